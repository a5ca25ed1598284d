"""Run by the sslyze environment's Python (not the project's): scan one server and print, as
JSON, how it deviates from a Mozilla TLS configuration (`{}`: compliant).

argv: host:port, the profile name (modern | intermediate), the CA file that issued the
server's certificate (so that path validation can succeed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sslyze import (
    CertificateInfoExtraArgument,
    ScanCommandsExtraArguments,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
)
from sslyze.mozilla_tls_profile.tls_config_checker import (
    SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
    MozillaTlsConfiguration,
    ServerNotCompliantWithTlsConfiguration,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)


def main() -> None:
    target, profile, ca_file = sys.argv[1:4]
    host, _, port = target.rpartition(":")
    request = ServerScanRequest(
        server_location=ServerNetworkLocation(hostname=host, port=int(port), ip_address=host),
        scan_commands=SCAN_COMMANDS_NEEDED_BY_MOZILLA_CHECKER,
        scan_commands_extra_arguments=ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(ca_file))
        ),
    )
    scanner = Scanner()
    scanner.queue_scans([request])
    result = next(iter(scanner.get_results()))
    try:
        check_server_against_tls_configuration(
            result, MozillaTlsConfiguration.get(TlsConfigurationEnum(profile))
        )
    except ServerNotCompliantWithTlsConfiguration as exc:
        print(json.dumps(exc.issues))
        return
    print(json.dumps({}))


if __name__ == "__main__":
    main()
