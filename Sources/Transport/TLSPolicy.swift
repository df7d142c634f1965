package import NIOSSL

/// etcd's TLS limits (`--tls-min-version`, `--tls-max-version`, `--cipher-suites`), applied as
/// etcd applies them: to the client and the peer port alike, servers and peer clients.
package struct TLSPolicy: Sendable, Equatable {
    package enum Version: String, Sendable, CaseIterable {
        case tls12 = "TLS1.2"
        case tls13 = "TLS1.3"

        var nioVersion: TLSVersion { self == .tls12 ? .tlsv12 : .tlsv13 }
    }

    package var minimumVersion = Version.tls12
    /// nil: the newest the library offers (TLS 1.3).
    package var maximumVersion: Version?
    /// TLS 1.2 cipher suites in OpenSSL's names; empty: the library's defaults. As with Go's TLS,
    /// TLS 1.3's suites are not configurable.
    package var cipherSuites: [String] = []

    package init() {}

    /// Go's names of the cipher suites etcd accepts that BoringSSL offers, with their OpenSSL
    /// names (the CBC-SHA256, 3DES and RC4 suites Go also knows are not offered by BoringSSL).
    static let openSSLNames: [String: String] = [
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
        "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
        "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    ]

    package enum ParseError: Error, Equatable, CustomStringConvertible {
        case version(String)
        case cipherSuite(String)
        case versionRange
        case cipherSuitesWithOnlyTLS13
        case allowedIdentityConflict(commonName: String, hostname: String)

        package var description: String {
            switch self {
            case .version(let text): "unexpected TLS version \"\(text)\" (must be one of: TLS1.2, TLS1.3)"
            case .cipherSuite(let name): "unexpected TLS cipher suite \"\(name)\""
            case .versionRange: "min version (--tls-min-version) is greater than max version (--tls-max-version)"
            case .cipherSuitesWithOnlyTLS13: "cipher suites cannot be configured when only TLS1.3 is enabled"
            case .allowedIdentityConflict(let name, let host):
                "AllowedCN and AllowedHostname are mutually exclusive (cn=\"\(name)\", hostname=\"\(host)\")"
            }
        }
    }

    /// The flags' values as etcd 3.5 reads them (an empty value: the default) and checks them.
    package static func parse(minimum: String, maximum: String, cipherSuites: String) throws(ParseError) -> TLSPolicy {
        var policy = TLSPolicy()
        if !minimum.isEmpty {
            guard let version = Version(rawValue: minimum) else { throw .version(minimum) }
            policy.minimumVersion = version
        }
        if !maximum.isEmpty {
            guard let version = Version(rawValue: maximum) else { throw .version(maximum) }
            policy.maximumVersion = version
        }
        if policy.minimumVersion == .tls13 && policy.maximumVersion == .tls12 { throw .versionRange }
        for name in cipherSuites.split(separator: ",").map({ String($0).trimmingWhitespace }) where !name.isEmpty {
            guard let openSSL = openSSLNames[name] else { throw .cipherSuite(name) }
            policy.cipherSuites.append(openSSL)
        }
        if !policy.cipherSuites.isEmpty && policy.minimumVersion == .tls13 { throw .cipherSuitesWithOnlyTLS13 }
        return policy
    }

    /// Sets the versions and suites on a configuration, server or client.
    package func apply(to configuration: inout TLSConfiguration) {
        configuration.minimumTLSVersion = minimumVersion.nioVersion
        configuration.maximumTLSVersion = maximumVersion?.nioVersion
        if !cipherSuites.isEmpty { configuration.cipherSuites = cipherSuites.joined(separator: ":") }
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
