"""Settings modules: `base` is what every deployment runs (driven by the environment); `test` adds
what every test needs. manage.py and the WSGI app use `base` unless DJANGO_SETTINGS_MODULE says
otherwise."""
