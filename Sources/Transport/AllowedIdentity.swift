internal import Foundation
package import NIOCore
package import NIOSSL
internal import SwiftASN1
internal import X509

/// etcd's `--peer-cert-allowed-cn`, `--peer-cert-allowed-hostname` and
/// `--client-cert-allowed-hostname`: besides chaining to the trusted CA, the certificate a peer
/// (or client) presents must carry this common name, or be valid for this host name (a DNS or IP
/// subject alternative name, as Go's `VerifyHostname` checks it: never the common name). As in
/// etcd, a peer's check applies both ways: to the members that connect to this one, and to the
/// members it dials.
package enum AllowedIdentity: Sendable, Equatable {
    /// NIOSSL's custom verification callback, as a sendable closure.
    package typealias Verification = @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResult>) -> Void

    case commonName(String)
    case hostname(String)

    /// The flags as etcd takes them: at most one of the two.
    package static func from(commonName: String?, hostname: String?) throws(TLSPolicy.ParseError) -> AllowedIdentity? {
        switch (commonName.flatMap { $0.isEmpty ? nil : $0 }, hostname.flatMap { $0.isEmpty ? nil : $0 }) {
        case (let name?, let host?): throw .allowedIdentityConflict(commonName: name, hostname: host)
        case (let name?, nil): return .commonName(name)
        case (nil, let host?): return .hostname(host)
        case (nil, nil): return nil
        }
    }

    /// What the presented certificate is for: a client's (checked by a listener) or a server's
    /// (checked by a member dialing `host`).
    package enum Side: Sendable {
        case client
        case server(host: String)
    }

    /// A TLS verification in place of BoringSSL's (NIOSSL lets a custom verification only replace
    /// it whole): the chain must reach a certificate of `trustedCAFile` under RFC 5280's rules,
    /// the leaf's extended key usage must allow the side it is used for (BoringSSL's purpose
    /// check), a server's certificate must be valid for the host dialed, and the leaf must name
    /// this identity. Anything else fails the handshake, so the other side gets a TLS alert, as
    /// from etcd.
    package func verification(trustedCAFile: String, side: Side) throws -> Verification {
        let verify = try verifier(trustedCAFile: trustedCAFile, side: side)
        return { presented, promise in
            promise.completeWithTask { await verify(presented) ? .certificateVerified : .failed }
        }
    }

    /// The same verification in the shape grpc-swift's client transport takes it.
    package func verificationWithMetadata(
        trustedCAFile: String, side: Side
    ) throws -> @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void {
        let verify = try verifier(trustedCAFile: trustedCAFile, side: side)
        return { presented, promise in
            promise.completeWithTask { await verify(presented) ? .certificateVerified(VerificationMetadata(nil)) : .failed }
        }
    }

    private func verifier(trustedCAFile: String, side: Side) throws -> @Sendable ([NIOSSLCertificate]) async -> Bool {
        let pem = try String(contentsOfFile: trustedCAFile, encoding: .utf8)
        let roots = try PEMDocument.parseMultiple(pemString: pem)
            .filter { $0.discriminator == "CERTIFICATE" }
            .map { try Certificate(pemDocument: $0) }
        let allowed = self
        var serverHost: String?
        if case .server(let host) = side { serverHost = host }
        return { [serverHost] presented in
            let chain = presented.compactMap { try? Certificate(derEncoded: $0.toDERBytes()) }
            guard chain.count == presented.count, let leaf = chain.first else { return false }
            var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
                RFC5280Policy()
                PurposePolicy(side: side)
                if let serverHost { ServerIdentityPolicy.forTarget(serverHost) }
                IdentityPolicy(allowed: allowed)
            }
            if case .validCertificate = await verifier.validate(leaf: leaf, intermediates: CertificateStore(chain.dropFirst())) {
                return true
            }
            return false
        }
    }

    /// The certificate's (last) common name, as Go's `Subject.CommonName` gives it.
    static func commonName(of certificate: Certificate) -> String? {
        var found: String?
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                found = String(describing: attribute.value)
            }
        }
        return found
    }
}

/// The leaf names the allowed identity.
private struct IdentityPolicy: VerifierPolicy {
    let allowed: AllowedIdentity
    var verifyingCriticalExtensions: [ASN1ObjectIdentifier] { [.X509ExtensionID.subjectAlternativeName] }

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        let leaf = chain.leaf
        switch allowed {
        case .commonName(let name):
            if AllowedIdentity.commonName(of: leaf) == name { return .meetsPolicy }
            return .failsToMeetPolicy(reason: "the certificate's common name is not \(name)")
        case .hostname(let host):
            // Go checks subject alternative names only; ServerIdentityPolicy would fall back to
            // the common name of a certificate that has none.
            guard (try? leaf.extensions.subjectAlternativeNames) != nil else {
                return .failsToMeetPolicy(reason: "the certificate has no subject alternative names")
            }
            var byName = ServerIdentityPolicy.forTarget(host)
            return byName.chainMeetsPolicyRequirements(chain: chain)
        }
    }
}

/// OpenSSL's purpose check: without an extended key usage any use is allowed; with one, the
/// side's use (or anyExtendedKeyUsage) must be listed.
private struct PurposePolicy: VerifierPolicy {
    let side: AllowedIdentity.Side
    var verifyingCriticalExtensions: [ASN1ObjectIdentifier] { [.X509ExtensionID.extendedKeyUsage] }

    mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        let usages: ExtendedKeyUsage?
        do {
            usages = try chain.leaf.extensions.extendedKeyUsage
        } catch {
            return .failsToMeetPolicy(reason: "the extended key usage does not decode")
        }
        guard let usages else { return .meetsPolicy }
        let needed: ExtendedKeyUsage.Usage
        switch side {
        case .client: needed = .clientAuth
        case .server: needed = .serverAuth
        }
        if usages.contains(needed) || usages.contains(.any) { return .meetsPolicy }
        return .failsToMeetPolicy(reason: "the certificate is not for \(needed)")
    }
}

extension ServerIdentityPolicy {
    /// The policy for a host name or an IP address, whichever `target` is.
    static func forTarget(_ target: String) -> ServerIdentityPolicy {
        let isIP = (try? SocketAddress(ipAddress: target, port: 0)) != nil
        return ServerIdentityPolicy(serverHostname: isIP ? nil : target, serverIP: isIP ? target : nil)
    }
}
