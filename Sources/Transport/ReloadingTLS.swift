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
    private let state: Mutex<(versions: [FileVersion?], setup: ServerTLSSetup)>

    /// Builds the first setup now: files that cannot be loaded at start fail the start.
    package init(watching files: [String], logger: Logger, make: @escaping @Sendable () throws -> ServerTLSSetup) throws {
        self.files = files
        self.make = make
        self.logger = logger
        let versions = files.map(FileVersion.of)
        state = Mutex((versions, try make()))
    }

    package func current() -> ServerTLSSetup {
        let versions = files.map(FileVersion.of)
        let (known, setup) = state.withLock { ($0.versions, $0.setup) }
        guard versions != known else { return setup }
        do {
            let fresh = try make()
            state.withLock { $0 = (versions, fresh) }
            logger.info("reloaded TLS certificate files; new connections use them", metadata: ["files": "\(files)"])
            return fresh
        } catch {
            state.withLock { $0.versions = versions }
            logger.warning("TLS certificate files changed but cannot be loaded; new connections keep the previous ones", metadata: [
                "files": "\(files)", "error": "\(error)",
            ])
            return setup
        }
    }
}
