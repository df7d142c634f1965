internal import Crypto
internal import CryptoExtras
internal import Foundation
internal import SwiftASN1
internal import X509

/// etcd's JWT tokens (`--auth-token jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...`,
/// auth/jwt.go): a token signed by the member that authenticated the user, carrying the user,
/// the auth revision it was made at and its expiry, so that any member with the key can check it
/// without knowing it beforehand. The claims and encodings are jwt-go's, so tokens made by etcd
/// and by kvd with the same key are each other's.
struct JWTTokens: Sendable {
    enum Method: String, Sendable, CaseIterable {
        case rs256 = "RS256", rs384 = "RS384", rs512 = "RS512"
        case ps256 = "PS256", ps384 = "PS384", ps512 = "PS512"
        case es256 = "ES256", es384 = "ES384", es512 = "ES512"
        case hs256 = "HS256", hs384 = "HS384", hs512 = "HS512"
    }

    /// The key a member signs and checks with; a public key alone only checks (etcd's verify-only).
    enum Key: Sendable {
        case rsa(private: _RSA.Signing.PrivateKey?, public: _RSA.Signing.PublicKey)
        case p256(private: P256.Signing.PrivateKey?, public: P256.Signing.PublicKey)
        case p384(private: P384.Signing.PrivateKey?, public: P384.Signing.PublicKey)
        case p521(private: P521.Signing.PrivateKey?, public: P521.Signing.PublicKey)
        case hmac(SymmetricKey)
    }

    let method: Method
    let key: Key
    let ttl: Duration

    /// etcd's default `ttl`.
    static let defaultTTL = Duration.seconds(300)

    init(method: Method, key: Key, ttl: Duration = defaultTTL) {
        self.method = method
        self.key = key
        self.ttl = ttl
    }

    /// etcd's jwtOptions: `sign-method` (required), `priv-key` and/or `pub-key` (PEM files; HMAC
    /// methods take the secret from `priv-key`), `ttl` (a Go duration in milliseconds here).
    init(options: [String: String], ttl: Duration) throws {
        guard let name = options["sign-method"], let method = Method(rawValue: name) else {
            throw ConfigurationError.invalid("auth: invalid auth signature method")
        }
        func read(_ option: String) throws -> String? {
            guard let path = options[option], !path.isEmpty else { return nil }
            guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }) else {
                throw ConfigurationError.invalid("open \(path): no such file or directory")
            }
            return text
        }
        let privatePEM = try read("priv-key"), publicPEM = try read("pub-key")
        guard privatePEM != nil || publicPEM != nil else { throw ConfigurationError.invalid("auth: missing key data") }
        do {
            switch method {
            case .rs256, .rs384, .rs512, .ps256, .ps384, .ps512:
                let signing = try privatePEM.map { try _RSA.Signing.PrivateKey(pemRepresentation: $0) }
                key = .rsa(private: signing, public: try signing?.publicKey ?? Self.publicKey(publicPEM!, _RSA.Signing.PublicKey.init))
            case .es256:
                let signing = try privatePEM.map { try P256.Signing.PrivateKey(pemRepresentation: $0) }
                key = .p256(private: signing, public: try signing?.publicKey ?? Self.publicKey(publicPEM!, P256.Signing.PublicKey.init))
            case .es384:
                let signing = try privatePEM.map { try P384.Signing.PrivateKey(pemRepresentation: $0) }
                key = .p384(private: signing, public: try signing?.publicKey ?? Self.publicKey(publicPEM!, P384.Signing.PublicKey.init))
            case .es512:
                let signing = try privatePEM.map { try P521.Signing.PrivateKey(pemRepresentation: $0) }
                key = .p521(private: signing, public: try signing?.publicKey ?? Self.publicKey(publicPEM!, P521.Signing.PublicKey.init))
            case .hs256, .hs384, .hs512:
                guard let secret = options["priv-key"].flatMap({ FileManager.default.contents(atPath: $0) }), !secret.isEmpty else {
                    throw ConfigurationError.invalid("auth: missing key data")
                }
                key = .hmac(SymmetricKey(data: secret))
            }
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError.invalid("the JWT key for \(method.rawValue) cannot be read: \(error)")
        }
        self.method = method
        self.ttl = ttl
    }

    /// A public key from its PEM, or from a certificate's, as jwt-go also takes it (etcd's own
    /// tests pass a server certificate as `pub-key`).
    private static func publicKey<Key: PEMPublicKey>(_ pem: String, _ fromCertificate: (Certificate.PublicKey) -> Key?) throws -> Key {
        guard pem.contains("-----BEGIN CERTIFICATE-----") else { return try Key(pemRepresentation: pem) }
        guard let key = fromCertificate(try Certificate(pemEncoded: pem).publicKey) else {
            throw ConfigurationError.invalid("auth: the certificate's key does not suit the sign method")
        }
        return key
    }

    /// A token for `user` at auth `revision` (jwt-go's MapClaims: keys in sorted order).
    func sign(user: String, revision: UInt64, now: Date = Date()) throws(AuthError) -> String {
        let expiry = Int64(now.timeIntervalSince1970) + ttl.components.seconds
        let header = #"{"alg":"\#(method.rawValue)","typ":"JWT"}"#
        let claims = #"{"exp":\#(expiry),"revision":\#(revision),"username":\#(JSONGateway.jsonString(user))}"#
        let input = Self.base64URL(Data(header.utf8)) + "." + Self.base64URL(Data(claims.utf8))
        guard let signature = signature(of: Data(input.utf8)) else { throw .verifyOnly }
        return input + "." + Self.base64URL(signature)
    }

    /// The caller a token names, if this member's key signed it with the configured method and it
    /// has not expired (etcd's tokenJWT.info).
    func caller(of token: String, now: Date = Date()) -> AuthInfo? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              let headerBytes = Self.decodeBase64URL(parts[0]),
              let header = try? JSONSerialization.jsonObject(with: headerBytes) as? [String: Any],
              header["alg"] as? String == method.rawValue,
              let signature = Self.decodeBase64URL(parts[2]),
              isValid(signature, of: Data((parts[0] + "." + parts[1]).utf8)),
              let claimBytes = Self.decodeBase64URL(parts[1]),
              let claims = try? JSONSerialization.jsonObject(with: claimBytes) as? [String: Any],
              let user = claims["username"] as? String,
              let revision = (claims["revision"] as? NSNumber)?.uint64Value
        else { return nil }
        // jwt-go checks exp, iat and nbf when present.
        let seconds = now.timeIntervalSince1970
        if let expiry = (claims["exp"] as? NSNumber)?.doubleValue, seconds > expiry { return nil }
        if let notBefore = (claims["nbf"] as? NSNumber)?.doubleValue, seconds < notBefore { return nil }
        if let issued = (claims["iat"] as? NSNumber)?.doubleValue, seconds < issued { return nil }
        return AuthInfo(user: user, revision: revision)
    }

    private func signature(of input: Data) -> Data? {
        switch (method, key) {
        case (.rs256, .rsa(let signing?, _)): try? signing.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation
        case (.rs384, .rsa(let signing?, _)): try? signing.signature(for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation
        case (.rs512, .rsa(let signing?, _)): try? signing.signature(for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation
        case (.ps256, .rsa(let signing?, _)): try? signing.signature(for: SHA256.hash(data: input), padding: .PSS).rawRepresentation
        case (.ps384, .rsa(let signing?, _)): try? signing.signature(for: SHA384.hash(data: input), padding: .PSS).rawRepresentation
        case (.ps512, .rsa(let signing?, _)): try? signing.signature(for: SHA512.hash(data: input), padding: .PSS).rawRepresentation
        case (.es256, .p256(let signing?, _)): try? signing.signature(for: SHA256.hash(data: input)).rawRepresentation
        case (.es384, .p384(let signing?, _)): try? signing.signature(for: SHA384.hash(data: input)).rawRepresentation
        case (.es512, .p521(let signing?, _)): try? signing.signature(for: SHA512.hash(data: input)).rawRepresentation
        case (.hs256, .hmac(let secret)): Data(HMAC<SHA256>.authenticationCode(for: input, using: secret))
        case (.hs384, .hmac(let secret)): Data(HMAC<SHA384>.authenticationCode(for: input, using: secret))
        case (.hs512, .hmac(let secret)): Data(HMAC<SHA512>.authenticationCode(for: input, using: secret))
        default: nil
        }
    }

    private func isValid(_ signature: Data, of input: Data) -> Bool {
        let rsa = _RSA.Signing.RSASignature(rawRepresentation: signature)
        switch (method, key) {
        case (.rs256, .rsa(_, let verifying)): return verifying.isValidSignature(rsa, for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)
        case (.rs384, .rsa(_, let verifying)): return verifying.isValidSignature(rsa, for: SHA384.hash(data: input), padding: .insecurePKCS1v1_5)
        case (.rs512, .rsa(_, let verifying)): return verifying.isValidSignature(rsa, for: SHA512.hash(data: input), padding: .insecurePKCS1v1_5)
        case (.ps256, .rsa(_, let verifying)): return verifying.isValidSignature(rsa, for: SHA256.hash(data: input), padding: .PSS)
        case (.ps384, .rsa(_, let verifying)): return verifying.isValidSignature(rsa, for: SHA384.hash(data: input), padding: .PSS)
        case (.ps512, .rsa(_, let verifying)): return verifying.isValidSignature(rsa, for: SHA512.hash(data: input), padding: .PSS)
        case (.es256, .p256(_, let verifying)):
            guard let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return verifying.isValidSignature(ecdsa, for: SHA256.hash(data: input))
        case (.es384, .p384(_, let verifying)):
            guard let ecdsa = try? P384.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return verifying.isValidSignature(ecdsa, for: SHA384.hash(data: input))
        case (.es512, .p521(_, let verifying)):
            guard let ecdsa = try? P521.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return verifying.isValidSignature(ecdsa, for: SHA512.hash(data: input))
        case (.hs256, .hmac(let secret)): return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: input, using: secret)
        case (.hs384, .hmac(let secret)): return HMAC<SHA384>.isValidAuthenticationCode(signature, authenticating: input, using: secret)
        case (.hs512, .hmac(let secret)): return HMAC<SHA512>.isValidAuthenticationCode(signature, authenticating: input, using: secret)
        default: return false
        }
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeBase64URL(_ text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

/// The public keys a JWT is checked with, read from PEM.
protocol PEMPublicKey {
    init(pemRepresentation: String) throws
}

extension _RSA.Signing.PublicKey: PEMPublicKey {}
extension P256.Signing.PublicKey: PEMPublicKey {}
extension P384.Signing.PublicKey: PEMPublicKey {}
extension P521.Signing.PublicKey: PEMPublicKey {}
