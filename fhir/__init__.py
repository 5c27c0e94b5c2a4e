"""The read-only FHIR R4 facade (docs/fhir.md).

`fhir.resources` (the FHIR models the tests validate with) installs into a `fhir` namespace
package, which this app's name would hide; extending the path keeps both importable.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
