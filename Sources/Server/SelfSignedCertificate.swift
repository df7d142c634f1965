internal import Crypto
internal import Foundation
internal import SwiftASN1
internal import X509

/// etcd's `--auto-tls` and `--peer-auto-tls` key pairs (etcd `transport.SelfCert`): a P-256 key and a
/// certificate signed by itself, for the hosts of the port's listen URLs, kept under
/// `<data-dir>/fixtures/{client,peer}` and reused on the next start. (etcd's key is P-521, which
/// BoringSSL does not offer to sign handshakes with by default: two kvd members could not connect.)
enum SelfSignedCertificate {
    /// Makes `files`' pair unless it exists; nothing for files given by the operator.
    static func ensure(_ files: TLSFiles, validityYears: Int) throws {
        guard let hosts = files.selfSignedHosts else { return }
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: files.certFile) && fileManager.fileExists(atPath: files.keyFile) { return }
        let directory = URL(fileURLWithPath: files.certFile).deletingLastPathComponent().path
        try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let key = P256.Signing.PrivateKey()
        let signingKey = Certificate.PrivateKey(key)
        let name = try DistinguishedName { OrganizationName("etcd") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: signingKey.publicKey,
            notValidBefore: now,
            notValidAfter: now.addingTimeInterval(Double(validityYears) * 365 * 24 * 3600),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                BasicConstraints.notCertificateAuthority
                KeyUsage(digitalSignature: true, keyEncipherment: true)
                // Server authentication as etcd's; client authentication too, since the peer pair is
                // also what this member presents when it connects to the others.
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(hosts.map(subjectAlternativeName))
            },
            issuerPrivateKey: signingKey)
        try certificate.serializeAsPEM().pemString.write(toFile: files.certFile, atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(toFile: files.keyFile, atomically: true, encoding: .utf8)
        try fileManager.setAttributes([.posixPermissions: 0o600], ofItemAtPath: files.keyFile)
    }

    /// An IP address as an address, anything else as a DNS name (as Go's `net.ParseIP` decides).
    private static func subjectAlternativeName(_ host: String) -> GeneralName {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v4) { ArraySlice($0) }))
        }
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return .ipAddress(ASN1OctetString(contentBytes: withUnsafeBytes(of: &v6) { ArraySlice($0) }))
        }
        return .dnsName(host)
    }
}
