internal import Foundation
package import Logging
package import NIOCore
internal import NIOSSL
internal import SwiftASN1
internal import Synchronization
internal import X509

/// etcd's `--client-crl-file` and `--peer-crl-file`: a certificate revocation list (PEM or DER)
/// whose serial numbers are refused on the client or peer port.
///
/// As etcd does it: the list is looked at again for every connection (so a new list applies
/// without a restart; it is parsed again only when the file changed), only its serial numbers count (its signature is not checked), and the check runs
/// after the TLS handshake: a connection whose certificate is listed, or that comes while the
/// list cannot be read, is closed with a "rejected connection" warning.
package struct RevocationList: Sendable, Equatable {
    /// The revoked serial numbers, without leading zero bytes.
    package let serials: Set<[UInt8]>

    package struct Invalid: Error, CustomStringConvertible {
        package var description: String
    }

    /// Parses an X.509 CertificateList (RFC 5280, 5.1) in DER.
    package init(derEncoded bytes: [UInt8]) throws {
        do {
            serials = try DER.sequence(try DER.parse(bytes), identifier: .sequence) { list in
                guard let certificateList = list.next() else { throw Invalid(description: "empty CertificateList") }
                let serials = try DER.sequence(certificateList, identifier: .sequence) { fields in
                    var field = fields.next()
                    if field?.identifier == .integer { field = fields.next() }  // version
                    // signature (field), issuer, thisUpdate
                    guard field != nil, fields.next() != nil, fields.next() != nil else {
                        throw Invalid(description: "truncated TBSCertList")
                    }
                    field = fields.next()
                    if let time = field, time.identifier == .utcTime || time.identifier == .generalizedTime {
                        field = fields.next()  // nextUpdate
                    }
                    var serials = Set<[UInt8]>()
                    if let revoked = field, revoked.identifier == .sequence {
                        guard case .constructed(let entries) = revoked.content else { throw Invalid(description: "bad revokedCertificates") }
                        for entry in entries {
                            try DER.sequence(entry, identifier: .sequence) { parts in
                                guard let serial = parts.next(), serial.identifier == .integer, case .primitive(let value) = serial.content else {
                                    throw Invalid(description: "a revoked entry without a serial number")
                                }
                                serials.insert(Self.normalized(value))
                                while parts.next() != nil {}  // revocationDate, crlEntryExtensions
                            }
                        }
                    }
                    while fields.next() != nil {}  // crlExtensions
                    return serials
                }
                while list.next() != nil {}  // signatureAlgorithm, signatureValue
                return serials
            }
        } catch let error as Invalid {
            throw error
        } catch {
            throw Invalid(description: "\(error)")
        }
    }

    /// Reads a list from a file, PEM ("X509 CRL") or DER, as Go's `x509.ParseCRL` takes either.
    package static func load(_ path: String) throws -> RevocationList {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        if let text = String(bytes: bytes, encoding: .utf8), text.contains("-----BEGIN") {
            let document = try PEMDocument(pemString: text)
            return try RevocationList(derEncoded: document.derBytes)
        }
        return try RevocationList(derEncoded: bytes)
    }

    /// The list at `path` as `load` reads it, parsed again only when the file changed (another
    /// inode, size or modification time): each connection asks, on its event loop.
    package static func current(_ path: String) throws -> RevocationList {
        guard let version = FileVersion.of(path) else { return try load(path) }  // load names the error
        if let cached = cache.withLock({ $0[path] }), cached.version == version { return cached.list }
        let list = try load(path)
        cache.withLock { $0[path] = (version, list) }
        return list
    }

    private static let cache = Mutex<[String: (version: FileVersion, list: RevocationList)]>([:])

    package func revokes(serial: some Collection<UInt8>) -> Bool {
        serials.contains(Self.normalized(serial))
    }

    /// A serial number as Go's `big.Int.Bytes()` gives it: no leading zero bytes.
    private static func normalized(_ bytes: some Collection<UInt8>) -> [UInt8] {
        Array(bytes.drop { $0 == 0 })
    }
}

/// Closes a TLS connection whose peer certificate the list at `path` revokes, at its first bytes
/// (they come after the handshake, so the certificate is known), before anything reads them; then
/// leaves the pipeline.
package final class RevocationCheck: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = NIOAny

    private let path: String
    private let logger: Logger
    private var refused = false

    package init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        if let refusal = refusal(context) {
            refused = true
            logger.warning("rejected connection", metadata: [
                "remote-addr": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")", "error": "\(refusal)",
            ])
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }

    /// Why the connection is refused (etcd's words), or nil.
    private func refusal(_ context: ChannelHandlerContext) -> String? {
        let list: RevocationList
        do {
            list = try RevocationList.current(path)
        } catch {
            return "transport: cannot read the certificate revocation list \(path): \(error)"
        }
        guard let presented = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
            let certificate = try? Certificate(derEncoded: presented.toDERBytes())
        else { return nil }  // no client certificate: nothing to revoke
        let serial = Array(certificate.serialNumber.bytes)
        guard list.revokes(serial: serial) else { return nil }
        return "transport: certificate serial \(serial.drop { $0 == 0 }.map { String(format: "%02x", $0) }.joined()) revoked"
    }
}
