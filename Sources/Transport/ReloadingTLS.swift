internal import Foundation
package import Logging
package import NIOSSL
internal import Synchronization

/// A file's identity as far as noticing a replacement goes: inode, size and modification time
/// (a rewrite in place changes the time, an atomic rename the inode). Nil: the file cannot be
/// looked at.
struct FileVersion: Equatable, Sendable {
    let inode: UInt64, size: Int64, seconds: Int, nanoseconds: Int

    static func of(_ path: String) -> FileVersion? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return FileVersion(
            inode: UInt64(status.st_ino), size: Int64(status.st_size), seconds: status.st_mtim.tv_sec,
            nanoseconds: status.st_mtim.tv_nsec)
    }
}

/// What an accepted connection's TLS is made of.
package struct ServerTLSSetup: Sendable {
    package let context: NIOSSLContext
    /// The check in place of BoringSSL's (allowed CNs and host names), when there is one.
    package let verification: AllowedIdentity.Verification?

    package init(context: NIOSSLContext, verification: AllowedIdentity.Verification?) {
        self.context = context
        self.verification = verification
    }
}

/// The server side of TLS on a port whose certificate, key and trusted CA may be replaced while
/// the member runs (renewal, CA rotation): every accepted connection takes the setup built from
/// the files as they are now, as etcd reads its key pair for every handshake. The files are
/// looked at per connection and read again only when one changed. A change that cannot be loaded
/// (a key that does not match its certificate while a rotation is half done) keeps the previous
/// setup, with a warning, until the files change again.
package final class ReloadingServerTLS: Sendable {
    private let files: [String]
    private let make: @Sendable () throws -> ServerTLSSetup
    private let logger: Logger
    /// `building`: one connection is loading changed files; the others keep the previous setup
    /// meanwhile, so a slow or failing load never replaces a newer one.
    private let state: Mutex<(versions: [FileVersion?], setup: ServerTLSSetup, building: Bool)>

    /// Builds the first setup now: files that cannot be loaded at start fail the start.
    package init(watching files: [String], logger: Logger, make: @escaping @Sendable () throws -> ServerTLSSetup) throws {
        self.files = files
        self.make = make
        self.logger = logger
        let versions = files.map(FileVersion.of)
        state = Mutex((versions, try make(), false))
    }

    /// A port's TLS from its key pair and trusted CA (the files watched); `context` builds the
    /// port's own context from them, and client certificates must name `allowed` when set.
    package convenience init(
        certFile: String, keyFile: String, trustedCAFile: String?, verifyClients: Bool, allowed: AllowedIdentity?,
        logger: Logger, context: @escaping @Sendable () throws -> NIOSSLContext
    ) throws {
        try self.init(watching: Self.files(certFile: certFile, keyFile: keyFile, trustedCAFile: trustedCAFile), logger: logger) {
            ServerTLSSetup(
                context: try context(),
                verification: try ServerTLS.clientVerification(trustedCAFile: trustedCAFile, verifyClients: verifyClients, allowed: allowed))
        }
    }

    /// The files whose change makes a port's TLS be loaded again.
    package static func files(certFile: String, keyFile: String, trustedCAFile: String?) -> [String] {
        [certFile, keyFile] + (trustedCAFile.map { [$0] } ?? [])
    }

    package func current() -> ServerTLSSetup {
        let versions = files.map(FileVersion.of)
        let (setup, mustBuild) = state.withLock { state -> (ServerTLSSetup, Bool) in
            guard versions != state.versions, !state.building else { return (state.setup, false) }
            state.building = true
            return (state.setup, true)
        }
        guard mustBuild else { return setup }
        do {
            let fresh = try make()
            state.withLock { $0 = (versions, fresh, false) }
            logger.info("reloaded TLS certificate files; new connections use them", metadata: ["files": "\(files)"])
            return fresh
        } catch {
            state.withLock {
                $0.versions = versions
                $0.building = false
            }
            logger.warning("TLS certificate files changed but cannot be loaded; new connections keep the previous ones", metadata: [
                "files": "\(files)", "error": "\(error)",
            ])
            return setup
        }
    }
}
