"""A plain DRF build of the patient list, detail and search, for the benchmark's ratio.

What a competent first version of these endpoints looks like with stock parts only: a
ModelSerializer of the same fields, PageNumberPagination, SearchFilter over the same columns,
simplejwt's JWTAuthentication and Django's stock middleware. It reads the same database, so it
takes the same tokens (same SECRET_KEY) and answers with the same rows. Served as
`bench.plain.wsgi:application` (`python -m bench.run` starts it beside the API).
"""
