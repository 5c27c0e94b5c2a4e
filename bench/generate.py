"""Fills a PostgreSQL database with the benchmark dataset, fast.

    python -m bench.generate --scale 1.0 [--database-url URL] [--force]

At scale 1.0: 10 organizations of skewed sizes (30 % of patients in the largest), 1,000,000
patients and 2,000,000 documents. Rows are made by `INSERT ... SELECT` over `generate_series`
inside PostgreSQL (no row leaves the server), with the secondary indexes dropped during the
load and rebuilt after it, foreign-key triggers off (the data is consistent by construction),
then VACUUM ANALYZE so the planner and index-only scans see a settled table, as autovacuum
leaves a production one. Organizations and users are made through the ORM. The generated
dataset is recorded in a `bench_dataset` table; a database already holding the requested scale
is left alone. Only a database that is empty or was made by this script is ever truncated.
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from bench import names

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/pms_bench"
# Bump when the generated data changes shape: an older dataset is then regenerated.
GENERATOR_VERSION = 3
PATIENTS_AT_FULL_SCALE = 1_000_000
DOCUMENTS_AT_FULL_SCALE = 2_000_000
# Extra clinicians of the largest organization: the load is spread over them as over the
# clinic's staff, each with a real JWT.
LOAD_USERS = 16
# The bench database's users share this password; it protects nothing but synthetic data.
BENCH_PASSWORD = "bench-Password-1"  # noqa: S105
MARKER_TABLE = "bench_dataset"
# Tables migrate fills and truncating would break.
KEEP_TABLES = {"django_migrations", "django_content_type", "auth_permission", MARKER_TABLE}
# Seeded so that two runs at one scale make the same dataset.
RANDOM_SEED = 0.4242
SPAN = timedelta(days=5 * 365)
PENDING_SHARE = 0.05
ARCHIVED_SHARE = 0.02


class BenchError(Exception):
    """The dataset cannot be made as asked (refused to touch a foreign database, ...)."""


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


@contextmanager
def timed(timings: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[step] = round(time.perf_counter() - started, 2)
    log(f"{step}: {timings[step]:.1f} s")


def django_env(database_url: str, redis_url: str = "") -> dict[str, str]:
    """The environment of a production-like app process against the bench database."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "LOG_LEVEL": "WARNING",
    }
    return env


def configure_django(database_url: str, redis_url: str = "") -> None:
    """Sets up Django in this process against the bench database (once per process)."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    os.environ.update(django_env(database_url, redis_url))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pms.settings.base")
    django.setup()


def _maintenance_url(database_url: str) -> tuple[str, str]:
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name:
        raise BenchError("The database URL names no database.")
    return urlunsplit(parts._replace(path="/postgres")), name


def ensure_database(database_url: str, *, recreate: bool = False) -> None:
    """Creates the database when it does not exist yet, or anew with `recreate`."""
    maintenance_url, name = _maintenance_url(database_url)
    conn = psycopg2.connect(maintenance_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if recreate:
                cur.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                log(f"created database {name}")
    finally:
        conn.close()


def migrate(database_url: str) -> None:
    env = {**os.environ, **django_env(database_url)}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
    )


def connect(database_url: str) -> Connection:
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    return conn


def read_marker(cur: Cursor) -> dict[str, Any] | None:
    cur.execute("SELECT to_regclass(%s)", [MARKER_TABLE])
    row = cur.fetchone()
    if row is None or row[0] is None:
        return None
    cur.execute(f"SELECT info FROM {MARKER_TABLE} ORDER BY id DESC LIMIT 1")  # noqa: S608
    row = cur.fetchone()
    if row is None:
        return None
    # psycopg2 decodes jsonb; a Django cursor leaves it as text.
    info = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return dict(info)


def _table_rows(cur: Cursor, table: str) -> int:
    cur.execute("SELECT to_regclass(%s)", [table])
    row = cur.fetchone()
    if row is None or row[0] is None:
        return 0
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    count = cur.fetchone()
    return int(count[0]) if count else 0


def refuse_foreign_database(cur: Cursor) -> dict[str, Any] | None:
    """The marker of the benchmark's dataset; `BenchError` if the database holds patients
    that the benchmark did not make (it would truncate them)."""
    marker = read_marker(cur)
    if marker is None and _table_rows(cur, "patient_patient") > 0:
        raise BenchError(
            "The database holds patients that this benchmark did not make; "
            "point BENCH_DATABASE_URL at a database of its own."
        )
    return marker


def dataset_sizes(scale: float) -> tuple[int, int]:
    if scale <= 0:
        raise BenchError("The scale must be positive.")
    return max(100, round(PATIENTS_AT_FULL_SCALE * scale)), max(
        200, round(DOCUMENTS_AT_FULL_SCALE * scale)
    )


def _is_complete(marker: dict[str, Any] | None, scale: float) -> bool:
    patients, documents = dataset_sizes(scale)
    return (
        marker is not None
        and marker.get("state") == "complete"
        and marker.get("generator_version") == GENERATOR_VERSION
        and marker.get("patients") == patients
        and marker.get("documents") == documents
    )


def ensure_dataset(database_url: str, scale: float, *, force: bool = False) -> dict[str, Any]:
    """The dataset of `scale` in the database, generated only when it is not there already.

    Any other dataset of the benchmark (another scale, or a run that died half-way) is thrown
    away with its database, which is made anew and migrated, so the indexes are always exactly
    those of the migrations.
    """
    ensure_database(database_url)
    conn = connect(database_url)
    try:
        with conn.cursor() as cur:
            marker = refuse_foreign_database(cur)
    finally:
        conn.close()
    reuse = not force and _is_complete(marker, scale)
    if marker is not None and not reuse:
        ensure_database(database_url, recreate=True)
    started = time.perf_counter()
    migrate(database_url)
    log(f"migrate: {time.perf_counter() - started:.1f} s")
    if reuse and marker is not None:
        log(f"dataset of {marker['patients']:,} patients, {marker['documents']:,} documents there")
        return marker
    return generate(database_url, scale)


def make_plain_table(database_url: str) -> None:
    """The plain build's patient table (`copy_for_plain_build`), vacuumed and checkpointed."""
    conn = connect(database_url)
    try:
        with conn.cursor() as cur:
            started = time.perf_counter()
            copy_for_plain_build(cur)
            # Settled as the API's table is (generate's VACUUM): visibility map, statistics.
            cur.execute("VACUUM (ANALYZE) plain.patient_patient")
            # Its dirty pages written now, not by a checkpoint during the first workload.
            _checkpoint(cur)
            log(f"the plain build's patient table: {time.perf_counter() - started:.1f} s")
    finally:
        conn.close()


def _checkpoint(cur: Cursor) -> None:
    try:
        cur.execute("CHECKPOINT")
    except psycopg2.Error:
        log("not a superuser: no CHECKPOINT (the next one falls in the measurements)")


def copy_for_plain_build(cur: Cursor) -> None:
    """The patients as the plain DRF build's own table, `plain.patient_patient` (bench/plain
    reads it first on its search path): the same rows, with only the indexes a stock Django
    model of them has, the primary key, the unique constraint and one btree per foreign key.
    None of the API's indexes (migrations patient 0002-0008) is there: the baseline is a first
    version of the endpoints, whose database nobody has tuned. Made anew at every run, from the
    rows as they are then (`make_plain_table` then vacuums it, which a transaction cannot)."""
    cur.execute("DROP SCHEMA IF EXISTS plain CASCADE")
    cur.execute("CREATE SCHEMA plain")
    cur.execute(
        "CREATE TABLE plain.patient_patient (LIKE public.patient_patient INCLUDING DEFAULTS "
        "INCLUDING CONSTRAINTS INCLUDING IDENTITY)"
    )
    cur.execute("INSERT INTO plain.patient_patient SELECT * FROM public.patient_patient")
    # The primary key and unique constraints as the API's table declares them; an index on
    # the columns of each foreign key, as `ForeignKey(db_index=True)` makes.
    cur.execute(
        """
        SELECT c.contype, pg_get_constraintdef(c.oid),
               ARRAY(SELECT a.attname::text FROM unnest(c.conkey) AS k(attnum)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum)
        FROM pg_constraint c
        WHERE c.conrelid = 'public.patient_patient'::regclass AND c.contype IN ('p', 'u', 'f')
        ORDER BY c.contype DESC, c.conname
        """
    )
    for kind, definition, columns in cur.fetchall():
        if kind == "f":
            statement = sql.SQL("CREATE INDEX ON plain.patient_patient ({})").format(
                sql.SQL(", ").join(sql.Identifier(column) for column in columns)
            )
        else:
            statement = sql.SQL("ALTER TABLE plain.patient_patient ADD {}").format(
                sql.SQL(definition)
            )
        cur.execute(statement)


def generate(database_url: str, scale: float) -> dict[str, Any]:
    """Makes the dataset of `scale` in a freshly migrated database; returns its description."""
    patients, documents = dataset_sizes(scale)
    timings: dict[str, float] = {}
    total_started = time.perf_counter()
    conn = connect(database_url)
    try:
        with conn.cursor() as cur:
            # First of all: from here on the database is known as the benchmark's own.
            write_marker(cur, {"state": "generating", "scale": scale})
            with timed(timings, "truncate"):
                truncate_app_tables(cur)
            configure_django(database_url)
            with timed(timings, "organizations and users (ORM)"):
                organizations = create_accounts()
            now = datetime.now(UTC)
            with timed(timings, "drop secondary indexes"):
                dropped = drop_secondary_indexes(cur, ["patient_patient", "document_document"])
            _tune_session(cur)
            with timed(timings, f"insert {patients:,} patients"):
                load_patients(cur, patients, organizations, now)
            with timed(timings, f"insert {documents:,} documents"):
                load_documents(cur, documents, patients, now)
            with timed(timings, "rebuild the indexes"):
                for statement in dropped:
                    cur.execute(statement)
            with timed(timings, "vacuum analyze"):
                for table in ("patient_patient", "document_document", "patient_mrnsequence"):
                    cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
                cur.execute("ANALYZE")
            terms = pick_search_terms(cur, organizations[0]["organization_id"])
            timings["total"] = round(time.perf_counter() - total_started, 2)
            info = {
                "state": "complete",
                "generator_version": GENERATOR_VERSION,
                "scale": scale,
                "patients": patients,
                "documents": documents,
                "organizations": organizations,
                "search_terms": terms,
                "generated_at": now.isoformat(),
                "timings_seconds": timings,
            }
            write_marker(cur, info)
            log(f"dataset ready in {timings['total']:.1f} s")
            return info
    finally:
        conn.close()


def truncate_app_tables(cur: Cursor) -> None:
    cur.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND NOT tablename = ANY(%s)",
        [sorted(KEEP_TABLES)],
    )
    tables = [row[0] for row in cur.fetchall()]
    if tables:
        cur.execute(
            sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(table) for table in tables)
            )
        )


def write_marker(cur: Cursor, info: dict[str, Any]) -> None:
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} "
        "(id serial PRIMARY KEY, info jsonb NOT NULL, created_at timestamptz DEFAULT now())"
    )
    cur.execute(f"INSERT INTO {MARKER_TABLE} (info) VALUES (%s)", [json.dumps(info)])  # noqa: S608


def create_accounts() -> list[dict[str, Any]]:
    """The organizations, largest first, each with an admin, a clinician and a staff member
    (plus the load clinicians in the largest). One password hash serves every user."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import Organization, Role, User

    password = make_password(BENCH_PASSWORD)
    organizations = Organization.objects.bulk_create(
        Organization(name=f"Bench Clinic {k}", slug=f"bench-{k}")
        for k in range(1, len(names.ORGANIZATION_SHARES) + 1)
    )
    users = []
    for k, organization in enumerate(organizations, start=1):
        usernames = [(f"bench-{role}-{k}", role) for role in Role]
        if k == 1:
            usernames += [(f"bench-load-{j:02d}", Role.CLINICIAN) for j in range(1, LOAD_USERS + 1)]
        users += [
            User(
                username=username,
                email=f"{username}@bench.example",
                email_verified=True,
                role=role,
                organization=organization,
                password=password,
            )
            for username, role in usernames
        ]
    by_username = {user.username: user for user in User.objects.bulk_create(users)}
    return [
        {
            "organization_id": organization.pk,
            "share": share,
            "admin": f"bench-admin-{k}",
            "clinician": f"bench-clinician-{k}",
            "staff": f"bench-staff-{k}",
            "staff_id": by_username[f"bench-staff-{k}"].pk,
            "clinician_id": by_username[f"bench-clinician-{k}"].pk,
            "load_users": (
                [f"bench-load-{j:02d}" for j in range(1, LOAD_USERS + 1)] if k == 1 else []
            ),
        }
        for k, (organization, share) in enumerate(
            zip(organizations, names.ORGANIZATION_SHARES, strict=True), start=1
        )
    ]


def drop_secondary_indexes(cur: Cursor, tables: list[str]) -> list[str]:
    """Drops the indexes that back no constraint; returns the statements that rebuild them.

    Building an index once over loaded rows is several times faster than maintaining it per row.
    A rebuilt index also gets back each column's statistics target (migration patient 0008's
    1,000-entry histograms of the trigram-indexed expressions), which its definition lacks.
    """
    cur.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
               ARRAY(SELECT format('ALTER INDEX %%I ALTER COLUMN %%s SET STATISTICS %%s',
                                   i.indexrelid::regclass::text, a.attnum, a.attstattarget)
                     FROM pg_attribute a
                     WHERE a.attrelid = i.indexrelid AND a.attstattarget > 0
                     ORDER BY a.attnum)
        FROM pg_index i
        WHERE i.indrelid = ANY(%s::regclass[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1
        """,
        [tables],
    )
    indexes = cur.fetchall()
    for name, _definition, _statistics in indexes:
        cur.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return [
        statement
        for _name, definition, statistics in indexes
        for statement in [definition, *statistics]
    ]


def _tune_session(cur: Cursor) -> None:
    """Session settings for the bulk load only; the app's own sessions keep the defaults."""
    cur.execute("SET work_mem = '256MB'")
    cur.execute("SET maintenance_work_mem = '1GB'")
    cur.execute("SET synchronous_commit = off")
    try:
        # Foreign-key triggers off: every reference is made valid by construction (superuser only).
        cur.execute("SET session_replication_role = replica")
    except psycopg2.Error:
        log("not a superuser: foreign keys are checked row by row (slower)")


def _pick(array_param: str, uniform: str) -> str:
    """SQL picking a uniformly random element of an array parameter."""
    array = f"%({array_param})s::text[]"
    return f"({array})[1 + floor({uniform} * cardinality({array}))::int]"


def _organizations_table(cur: Cursor, organizations: list[dict[str, Any]]) -> None:
    cur.execute("DROP TABLE IF EXISTS bench_org")
    cur.execute(
        "CREATE TEMP TABLE bench_org (idx int PRIMARY KEY, organization_id bigint, "
        "staff_id bigint, clinician_id bigint) ON COMMIT PRESERVE ROWS"
    )
    cur.executemany(
        "INSERT INTO bench_org VALUES (%s, %s, %s, %s)",
        [
            (k, org["organization_id"], org["staff_id"], org["clinician_id"])
            for k, org in enumerate(organizations, start=1)
        ],
    )


def load_patients(
    cur: Cursor, count: int, organizations: list[dict[str, Any]], now: datetime
) -> None:
    """Inserts `count` patients with ids 1..count, their organizations' MRN counters, and
    moves the id sequence past them. Works inside or outside a transaction."""
    _organizations_table(cur, organizations)
    cur.execute("SELECT setseed(%s)", [RANDOM_SEED])
    uniforms = [
        "org", "gender", "first", "surname_kind", "surname", "rare1", "rare2", "rare3",
        "middle", "email", "domain", "phone", "dob", "estimated", "created", "updated",
        "updated_at", "archived", "street_no", "street", "city", "notes",
    ]  # fmt: skip
    columns = ", ".join(f"random() AS u_{name}" for name in uniforms)
    cur.execute(
        f"CREATE TEMP TABLE gen_patient AS SELECT i, {columns} FROM generate_series(1, %s) AS g(i)",  # noqa: S608, E501
        [count],
    )
    params = {
        "n": count,
        "now": now,
        "today": now.date(),
        "start": now - SPAN,
        "span": SPAN,
        "org_buckets": names.bucket_thresholds(names.ORGANIZATION_SHARES),
        "surnames": names.SURNAMES,
        "surname_buckets": names.bucket_thresholds(names.zipf_weights(len(names.SURNAMES))),
        "female": names.FEMALE_FIRST_NAMES,
        "female_buckets": names.bucket_thresholds(
            names.zipf_weights(len(names.FEMALE_FIRST_NAMES))
        ),
        "male": names.MALE_FIRST_NAMES,
        "male_buckets": names.bucket_thresholds(names.zipf_weights(len(names.MALE_FIRST_NAMES))),
        "prefixes": names.RARE_PREFIXES,
        "middles": names.RARE_MIDDLES,
        "suffixes": names.RARE_SUFFIXES,
        "streets": names.STREETS,
        "cities": names.CITIES,
        "domains": names.EMAIL_DOMAINS,
        "notes": names.NOTES,
        "real_share": names.REAL_SURNAME_SHARE,
        "archived_share": ARCHIVED_SHARE,
    }
    rare_surname = " || ".join(
        _pick(array, f"u_rare{k}")
        for k, array in enumerate(["prefixes", "middles", "suffixes"], start=1)
    )
    # Inner to outer: draw the attributes, derive what depends on them, number the MRNs per
    # organization, insert in id order (ids and created_at grow together, as in production).
    cur.execute(
        f"""
        INSERT INTO patient_patient (
            id, organization_id, mrn, full_name, email, phone, date_of_birth,
            birth_date_estimated, gender, address, notes, is_active, archived_at,
            created_by_id, created_at, updated_at, version
        )
        SELECT
            i, organization_id,
            'MRN-' || CASE WHEN seq < 1000000 THEN lpad(seq::text, 6, '0') ELSE seq::text END,
            first_name || middle || ' ' || surname,
            CASE WHEN u_email < 0.9 THEN
                lower(first_name) || '.' || lower(surname) || (i %% 997)::text || '@'
                || {_pick("domains", "u_domain")}
            ELSE '' END,
            CASE WHEN u_phone < 0.92 THEN
                '+1' || (200 + floor(u_phone / 0.92 * 800))::int::text
                || lpad(((i::bigint * 7919) %% 10000000)::text, 7, '0')
            ELSE '' END,
            CASE WHEN u_estimated < 0.03 THEN make_date(extract(year FROM dob)::int, 1, 1)
                 ELSE dob END,
            u_estimated < 0.03,
            gender,
            (1 + floor(u_street_no * 9999))::int::text || ' ' || {_pick("streets", "u_street")}
                || ' St, ' || {_pick("cities", "u_city")},
            CASE WHEN u_notes < 0.15 THEN (%(notes)s::text[])[1 + floor(u_notes / 0.15
                * cardinality(%(notes)s::text[]))::int] ELSE '' END,
            u_archived >= %(archived_share)s,
            CASE WHEN u_archived < %(archived_share)s THEN updated_at END,
            staff_id, created_at, updated_at,
            CASE WHEN updated_at > created_at THEN 2 + floor(u_updated_at * 3)::int ELSE 1 END
        FROM (
            SELECT d.*, row_number() OVER (PARTITION BY organization_id ORDER BY i) AS seq
            FROM (
                SELECT g.*, o.organization_id, o.staff_id,
                    CASE WHEN g.u_gender < 0.48 THEN 'M' WHEN g.u_gender < 0.96 THEN 'F'
                         WHEN g.u_gender < 0.975 THEN 'O' ELSE 'U' END AS gender,
                    CASE WHEN g.u_gender < 0.48 OR (g.u_gender >= 0.96 AND g.u_first < 0.5)
                        THEN (%(male)s::text[])[width_bucket(g.u_first, %(male_buckets)s::float8[])]
                        ELSE (%(female)s::text[])[
                            width_bucket(g.u_first, %(female_buckets)s::float8[])]
                    END AS first_name,
                    CASE WHEN g.u_middle < 0.1
                        THEN ' ' || chr(65 + floor(g.u_middle * 260)::int) || '.' ELSE '' END
                        AS middle,
                    CASE WHEN g.u_surname_kind < %(real_share)s
                        THEN (%(surnames)s::text[])[
                            width_bucket(g.u_surname, %(surname_buckets)s::float8[])]
                        ELSE {rare_surname}
                    END AS surname,
                    %(today)s::date - floor(g.u_dob * 36525)::int AS dob,
                    %(start)s::timestamptz + ((g.i - 1 + g.u_created) / %(n)s) * %(span)s::interval
                        AS created_at
                FROM gen_patient g
                JOIN bench_org o ON o.idx = width_bucket(g.u_org, %(org_buckets)s::float8[])
            ) d
        ) s,
        LATERAL (
            SELECT CASE WHEN s.u_updated < 0.3
                THEN s.created_at + s.u_updated_at * (%(now)s::timestamptz - s.created_at)
                ELSE s.created_at END AS updated_at
        ) u
        ORDER BY i
        """,  # noqa: S608 - only constant fragments are formatted in; values are parameters
        params,
    )
    cur.execute(
        "INSERT INTO patient_mrnsequence (organization_id, last_value) "
        "SELECT organization_id, count(*) FROM patient_patient GROUP BY organization_id"
    )
    # The bulk load ran with triggers off: the per-organization counters are filled here.
    cur.execute(import_module("patient.migrations.0003_patient_counts").RECOUNT)
    cur.execute(
        "SELECT setval(pg_get_serial_sequence('patient_patient', 'id'), "
        "(SELECT max(id) FROM patient_patient))"
    )
    cur.execute("DROP TABLE gen_patient")


def _document_kind_sql() -> tuple[str, str, str]:
    """CASE expressions for the type (from u_type), content type and extension (from u_ct)."""
    type_case, content_case, extension_case = ["CASE"], ["CASE"], ["CASE"]
    lower = 0.0
    for index, (document_type, _label, share, contents) in enumerate(names.DOCUMENT_KINDS):
        upper = 1.0 if index == len(names.DOCUMENT_KINDS) - 1 else lower + share
        type_case.append(f"WHEN u_type < {upper!r} THEN '{document_type}'")
        inner_lower = 0.0
        for content_index, (content_type, extension, content_share) in enumerate(contents):
            inner_upper = 1.0 if content_index == len(contents) - 1 else inner_lower + content_share
            condition = f"document_type = '{document_type}' AND u_ct < {inner_upper!r}"
            content_case.append(f"WHEN {condition} THEN '{content_type}'")
            extension_case.append(f"WHEN {condition} THEN '{extension}'")
            inner_lower = inner_upper
        lower = upper
    return (
        " ".join([*type_case, "END"]),
        " ".join([*content_case, "END"]),
        " ".join([*extension_case, "END"]),
    )


def load_documents(cur: Cursor, count: int, patients: int, now: datetime) -> None:
    """Inserts `count` documents over patients 1..`patients` (older patients have more), ids in
    creation order, each in its patient's organization and created after its patient."""
    cur.execute("SELECT setseed(%s)", [RANDOM_SEED / 2])
    cur.execute(
        """
        CREATE TEMP TABLE gen_document AS
        SELECT i, 1 + floor(%s * power(random(), 1.5))::bigint AS patient_id,
               random() AS u_type, random() AS u_ct, random() AS u_created, random() AS u_size,
               random() AS u_uploaded, random() AS u_archived
        FROM generate_series(1, %s) AS g(i)
        """,
        [patients, count],
    )
    type_case, content_case, extension_case = _document_kind_sql()
    labels = " ".join(
        f"WHEN '{document_type}' THEN '{label}'"
        for document_type, label, _share, _contents in names.DOCUMENT_KINDS
    )
    cur.execute(
        f"""
        INSERT INTO document_document (
            id, organization_id, patient_id, document_type, title, filename, content_type,
            size_bytes, object_name, is_uploaded, uploaded_at, checksum, scan_status,
            scan_finding, uploaded_by_id, is_active, archived_at, created_at, updated_at
        )
        SELECT
            row_number() OVER (ORDER BY created_at, i), organization_id, patient_id,
            document_type,
            CASE document_type {labels} END || ' ' || to_char(created_at, 'YYYY-MM-DD'),
            replace(document_type, '_', '-') || '-' || to_char(created_at, 'YYYYMMDD') || '-'
                || i::text || '.' || extension,
            content_type,
            CASE WHEN document_type = 'imaging'
                THEN floor(exp(ln(200000) + u_size * ln(100)))::bigint
                ELSE floor(exp(ln(20000) + u_size * ln(100)))::bigint END,
            'documents/' || organization_id::text || '/' || md5(i::text || '-bench-object'),
            u_uploaded >= %(pending_share)s,
            CASE WHEN u_uploaded >= %(pending_share)s
                THEN created_at + (5 + u_uploaded * 60) * interval '1 second' END,
            CASE WHEN u_uploaded >= %(pending_share)s
                THEN 'md5:' || encode(decode(md5(i::text || '-bench-bytes'), 'hex'), 'base64')
                ELSE '' END,
            CASE WHEN u_uploaded >= %(pending_share)s THEN 'clean' ELSE 'pending' END,
            '',
            clinician_id,
            u_archived >= %(archived_share)s,
            CASE WHEN u_archived < %(archived_share)s THEN created_at + interval '1 day' END,
            created_at,
            created_at + (5 + u_uploaded * 60) * interval '1 second'
        FROM (
            SELECT k.*, {content_case} AS content_type, {extension_case} AS extension
            FROM (
                SELECT d.*, p.organization_id, o.clinician_id, {type_case} AS document_type,
                       p.created_at + d.u_created * (%(now)s::timestamptz - p.created_at)
                           AS created_at
                FROM gen_document d
                JOIN patient_patient p ON p.id = d.patient_id
                JOIN bench_org o ON o.organization_id = p.organization_id
            ) k
        ) x
        ORDER BY created_at, i
        """,  # noqa: S608 - only constant fragments are formatted in; values are parameters
        {"now": now, "pending_share": PENDING_SHARE, "archived_share": ARCHIVED_SHARE},
    )
    cur.execute(
        "SELECT setval(pg_get_serial_sequence('document_document', 'id'), "
        "(SELECT max(id) FROM document_document))"
    )
    cur.execute("DROP TABLE gen_document")


def _transposed(word: str) -> str:
    """The word with two different adjacent letters swapped, nearest its middle: a typical
    typo."""
    middle = len(word) // 2
    for i in sorted(range(1, len(word)), key=lambda i: abs(i - middle)):
        if word[i - 1] != word[i]:
            return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    return word


def pick_search_terms(cur: Cursor, organization_id: int) -> dict[str, Any]:
    """Terms of the organization's patients by how many of them carry the surname: the most
    common one, a medium one (about 0.1 % of the organization) and a rare one (a few)."""
    cur.execute(
        """
        SELECT substring(full_name FROM '([^ ]+)$') AS surname, count(*) AS patients
        FROM patient_patient WHERE organization_id = %s AND is_active
        GROUP BY 1 ORDER BY 2 DESC, 1
        """,
        [organization_id],
    )
    counts = cur.fetchall()
    organization_size = sum(patients for _surname, patients in counts)
    real = [(surname, patients) for surname, patients in counts if surname in names.SURNAMES]
    rare_candidates = [
        (surname, patients)
        for surname, patients in counts
        if surname not in names.SURNAMES and patients >= 2
    ] or [(surname, patients) for surname, patients in counts if surname not in names.SURNAMES]
    rare = min(rare_candidates, key=lambda row: (row[1], row[0]))
    # About 0.1 % of the organization, and more than the rare one even in a tiny dataset.
    medium_target = max(rare[1] + 1, organization_size * 0.001)
    medium_candidates = [row for row in real[1:] if row[1] > rare[1]] or real[1:]
    medium = min(medium_candidates, key=lambda row: (abs(row[1] - medium_target), row[0]))
    return {
        "organization_patients": organization_size,
        "common": {"term": real[0][0].lower(), "surname_patients": real[0][1]},
        "medium": {"term": medium[0].lower(), "surname_patients": medium[1]},
        "rare": {"term": rare[0].lower(), "surname_patients": rare[1]},
        "typo": {"term": _transposed(medium[0].lower()), "of": medium[0].lower()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", "1.0")))
    parser.add_argument("--force", action="store_true", help="regenerate even if present")
    args = parser.parse_args(argv)
    try:
        info = ensure_dataset(args.database_url, args.scale, force=args.force)
    except BenchError as error:
        log(str(error))
        return 2
    log(json.dumps(info["search_terms"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
