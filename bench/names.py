"""Vocabulary of the synthetic dataset: names, streets, document kinds.

Surnames follow a Zipf-Mandelbrot law over real surnames, most common first, plus a long tail of
synthetic ones built from three syllables, each shared by a handful of patients. So a search has
very common terms ("Smith": ~2 % of patients), medium ones (~0.1 %) and rare ones (a few rows).
"""

from itertools import accumulate


def _words(text: str) -> list[str]:
    return text.split()


# Most common first (roughly the US census order).
SURNAMES = _words(
    """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips
Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers
Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson
Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders
Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler
Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton
Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina
Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald Woods Washington
Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter
Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black
Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson
Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce
Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson
Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena
Richards Contreras Willis Carpenter Lawrence Sandoval
"""
)

FEMALE_FIRST_NAMES = _words(
    """
Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty
Margaret Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah
Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy Angela Shirley Anna Brenda Pamela Emma
Nicole Helen Samantha Katherine Christine Debra Rachel Carolyn Janet Catherine Maria Heather
Diane Ruth Julie Olivia Joyce Virginia Victoria Kelly Lauren Christina Joan Evelyn Judith Megan
Andrea Cheryl Hannah Jacqueline Martha Gloria Teresa Ann Sara Madison Frances Kathryn Janice
Jean Abigail Alice Judy Sophia Grace Denise Amber Doris Marilyn Danielle Beverly Isabella
Theresa Diana Natalie Brittany Charlotte Marie Kayla Alexis Lori
"""
)

MALE_FIRST_NAMES = _words(
    """
James Robert John Michael David William Richard Joseph Thomas Christopher Charles Daniel
Matthew Anthony Mark Donald Steven Andrew Paul Joshua Kenneth Kevin Brian George Timothy Ronald
Jason Edward Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon
Benjamin Samuel Gregory Alexander Patrick Frank Raymond Jack Dennis Jerry Tyler Aaron Jose Adam
Nathan Henry Zachary Douglas Peter Kyle Noah Ethan Jeremy Walter Christian Keith Roger Terry
Austin Sean Gerald Carl Harold Dylan Arthur Lawrence Jordan Jesse Bryan Billy Bruce Gabriel Joe
Logan Alan Juan Albert Willie Elijah Wayne Randy Vincent Mason Roy Ralph Bobby Russell Bradley
Philip Eugene
"""
)

# Rare surnames: prefix + middle + suffix, 30 x 30 x 20 = 18,000 spellings.
RARE_PREFIXES = _words(
    """
Al Bar Cor Dal Em Fen Gal Har Ish Jor Kel Lor Mar Nor Or Pel Quen Ros Sel Tor Ul Val Wen Yar
Zan Bel Cas Dor Fal Gor
"""
)
RARE_MIDDLES = _words(
    """
a e i o u an en in on ar er ir or el il ol ab ed ig ov am et is ul ay ey oy ash eth ith
"""
)
RARE_SUFFIXES = _words(
    """
dor vik mund ley ton berg stein wick ford sby mar ral nik quist dahl ridge worth lund hurst croft
"""
)

STREETS = _words(
    """
Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Sunset Highland River Church Spring
Center Meadow Forest Willow Ridge
"""
)
CITIES = _words(
    """
Springfield Riverside Franklin Greenville Bristol Clinton Fairview Salem Madison Georgetown
Arlington Ashland Dover Oxford Jackson Burlington Manchester Milton Newport Auburn
"""
)
EMAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com"]
NOTES = [
    "Allergic to penicillin.",
    "Prefers morning appointments.",
    "Interpreter needed.",
    "Type 2 diabetes, on metformin.",
    "Hypertension, monitored quarterly.",
    "Asthma; carries an inhaler.",
    "Latex allergy.",
    "Pacemaker fitted.",
]

# Share of patients with a real (not synthetic) surname, and the shape of its Zipf law.
REAL_SURNAME_SHARE = 0.75
ZIPF_EXPONENT = 0.75
ZIPF_OFFSET = 3

# The ten organizations' shares of patients: a few large clinics, a long tail of small ones.
ORGANIZATION_SHARES = [0.30, 0.20, 0.13, 0.10, 0.08, 0.06, 0.05, 0.04, 0.02, 0.02]

# (document type, label, share, [(content type, extension, share within the type)])
DOCUMENT_KINDS = [
    (
        "lab_result",
        "Lab result",
        0.30,
        [("application/pdf", "pdf", 0.8), ("text/plain", "txt", 0.2)],
    ),
    (
        "medical_report",
        "Medical report",
        0.18,
        [
            ("application/pdf", "pdf", 0.7),
            (
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "docx",
                0.3,
            ),
        ],
    ),
    ("prescription", "Prescription", 0.15, [("application/pdf", "pdf", 1.0)]),
    (
        "imaging",
        "Imaging",
        0.10,
        [("image/png", "png", 0.3), ("image/jpeg", "jpg", 0.3), ("application/dicom", "dcm", 0.4)],
    ),
    ("insurance", "Insurance", 0.08, [("application/pdf", "pdf", 0.6), ("image/jpeg", "jpg", 0.4)]),
    ("consent_form", "Consent form", 0.07, [("application/pdf", "pdf", 1.0)]),
    ("referral", "Referral", 0.07, [("application/pdf", "pdf", 1.0)]),
    ("other", "Other", 0.05, [("application/pdf", "pdf", 0.5), ("image/tiff", "tif", 0.5)]),
]


def zipf_weights(
    count: int, exponent: float = ZIPF_EXPONENT, offset: int = ZIPF_OFFSET
) -> list[float]:
    """Zipf-Mandelbrot weights 1 / (rank + offset) ** exponent, normalized to sum 1."""
    raw = [1 / (rank + offset) ** exponent for rank in range(1, count + 1)]
    total = sum(raw)
    return [weight / total for weight in raw]


def bucket_thresholds(weights: list[float]) -> list[float]:
    """Lower bounds of each bucket for PostgreSQL's `width_bucket(u, thresholds)`: a uniform
    `u` in [0, 1) lands in bucket k (1-based) with probability weights[k - 1]."""
    return [0.0, *accumulate(weights[:-1])]
