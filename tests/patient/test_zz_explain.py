import random
from datetime import date, timedelta

from django.db import connection

from patient.filters import PatientFilterSet, PatientSearchFilterSet
from patient.models import Patient
from patient.selectors import patient_list


def test_explain(organization, other_organization, clinician, postgres_only):
    rnd = random.Random(1)
    first = ["John", "Jane", "Mary", "Peter", "Ahmed", "Wei", "Olga", "Carlos", "Priya", "Sam"]
    last = ["Doe", "Smith", "Garcia", "Nguyen", "Okafor", "Brown", "Khan", "Lee"]
    rows = []
    for i in range(40000):
        org = organization if i % 50 else other_organization
        rows.append(Patient(organization=org, mrn=f"X-{i:06d}", full_name=f"{rnd.choice(first)} {rnd.choice(last)} {i}",
            email=f"p{i}@example.com", phone=f"+1202555{i % 10000:04d}", date_of_birth=date(1930,1,1)+timedelta(days=rnd.randrange(30000)),
            gender=rnd.choice("MFOU"), is_active=rnd.random() > 0.05))
    Patient.objects.bulk_create(rows)
    with connection.cursor() as c:
        c.execute("ANALYZE patient_patient")
        c.execute("SET LOCAL enable_seqscan = off")
    with connection.cursor() as c:
        c.execute("select indexname from pg_indexes where tablename='patient_patient'")
        print(c.fetchall())
        c.execute("EXPLAIN SELECT id FROM patient_patient WHERE UPPER(full_name::text) LIKE '%%JOHN DOE 1234%%'")
        print(c.fetchall())
    base = patient_list(user=clinician)
    for q in ["search=john", "search=0143", "search=X-00004", "search=john&gender=M&age_min=18&age_max=65&ordering=-created_at"]:
        data = dict(p.split("=") for p in q.split("&")) if q else {}
        qs = PatientFilterSet(data, queryset=base).qs
        print("\n###", q, "\n", str(qs.query)[-400:] if "search" in q else "", "\n", qs[:20].explain())
        sql, params = qs.order_by().query.sql_with_params()
        with connection.cursor() as c:
            c.execute("EXPLAIN SELECT COUNT(*) FROM (" + sql + ") x", params)
            print("COUNT\n", "\n".join(r[0] for r in c.fetchall()))
    for q in ["jhon", "john doe", "X-000042"]:
        qs = PatientSearchFilterSet({"q": q}, queryset=base).qs
        print("\n### search", q, "\n", qs[:20].explain())
