import Crypto
import CryptoExtras
import Foundation
@testable import Server
import Testing
import SwiftASN1
import X509

/// etcd's JWT tokens: signed with the configured method and key, checked by signature, method and
/// expiry, refused when only a public key is configured for signing.
@Suite struct JWTTokensTests {
    private func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-jwt-\(UUID().uuidString).pem").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func keys(_ method: String) throws -> (private: String, public: String) {
        switch method.prefix(2) {
        case "RS", "PS":
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            return (try write(key.pemRepresentation), try write(key.publicKey.pemRepresentation))
        case "ES":
            switch method {
            case "ES256": let key = P256.Signing.PrivateKey(); return (try write(key.pemRepresentation), try write(key.publicKey.pemRepresentation))
            case "ES384": let key = P384.Signing.PrivateKey(); return (try write(key.pemRepresentation), try write(key.publicKey.pemRepresentation))
            default: let key = P521.Signing.PrivateKey(); return (try write(key.pemRepresentation), try write(key.publicKey.pemRepresentation))
            }
        default:
            let secret = try write("a shared secret")
            return (secret, secret)
        }
    }

    @Test(arguments: JWTTokens.Method.allCases.map(\.rawValue))
    func aTokenNamesItsUserAndRevisionUntilItExpires(method: String) throws {
        let (privateKey, publicKey) = try keys(method)
        let signer = try JWTTokens(options: ["sign-method": method, "priv-key": privateKey, "pub-key": publicKey], ttl: .seconds(60))
        let now = Date()
        let token = try signer.sign(user: "alice", revision: 7, now: now)
        #expect(token.split(separator: ".").count == 3)
        #expect(signer.caller(of: token, now: now) == AuthInfo(user: "alice", revision: 7))
        #expect(signer.caller(of: token, now: now.addingTimeInterval(61)) == nil)  // expired
        // Another member with only the public key checks it too (HMAC: the shared secret).
        let checker = try JWTTokens(
            options: ["sign-method": method, method.hasPrefix("HS") ? "priv-key" : "pub-key": publicKey], ttl: .seconds(60))
        #expect(checker.caller(of: token, now: now) == AuthInfo(user: "alice", revision: 7))
        if !method.hasPrefix("HS") {
            #expect(throws: AuthError.verifyOnly) { try checker.sign(user: "alice", revision: 7) }
        }
        // A changed claim breaks the signature.
        let parts = token.split(separator: ".").map(String.init)
        let forged = JWTTokens.base64URL(Data(#"{"exp":9999999999,"revision":7,"username":"root"}"#.utf8))
        #expect(signer.caller(of: [parts[0], forged, parts[2]].joined(separator: "."), now: now) == nil)
        #expect(signer.caller(of: "not.a.token", now: now) == nil)
    }

    /// etcd's own e2e tests give a certificate as the public key.
    @Test func aCertificateServesAsThePublicKey() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-jwt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("jwt") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date(),
            notValidAfter: Date().addingTimeInterval(3600), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: .init(), issuerPrivateKey: .init(key))
        let certificatePEM = try write(try certificate.serializeAsPEM().pemString)
        let privatePEM = try write(key.pemRepresentation)
        let signer = try JWTTokens(options: ["sign-method": "ES256", "priv-key": privatePEM], ttl: .seconds(60))
        let checker = try JWTTokens(options: ["sign-method": "ES256", "pub-key": certificatePEM], ttl: .seconds(60))
        #expect(checker.caller(of: try signer.sign(user: "alice", revision: 3)) == AuthInfo(user: "alice", revision: 3))
        #expect(throws: ConfigurationError.self) {
            try JWTTokens(options: ["sign-method": "RS256", "pub-key": certificatePEM], ttl: .seconds(60))
        }
    }

    @Test func aTokenOfAnotherMethodOrKeyIsRefused() throws {
        let (rsaPrivate, _) = try keys("RS256")
        let (otherPrivate, _) = try keys("RS256")
        let rs256 = try JWTTokens(options: ["sign-method": "RS256", "priv-key": rsaPrivate], ttl: .seconds(60))
        let ps256 = try JWTTokens(options: ["sign-method": "PS256", "priv-key": rsaPrivate], ttl: .seconds(60))
        let otherKey = try JWTTokens(options: ["sign-method": "RS256", "priv-key": otherPrivate], ttl: .seconds(60))
        let token = try rs256.sign(user: "alice", revision: 1)
        #expect(ps256.caller(of: token) == nil)
        #expect(otherKey.caller(of: token) == nil)
    }

    @Test func badOptionsAreRefusedWithEtcdsMessages() throws {
        #expect(throws: ConfigurationError.invalid("auth: invalid auth signature method")) {
            try JWTTokens(options: ["sign-method": "none"], ttl: .seconds(1))
        }
        #expect(throws: ConfigurationError.invalid("auth: missing key data")) {
            try JWTTokens(options: ["sign-method": "RS256"], ttl: .seconds(1))
        }
        #expect(throws: ConfigurationError.invalid("open /nonexistent.pem: no such file or directory")) {
            try JWTTokens(options: ["sign-method": "ES256", "priv-key": "/nonexistent.pem"], ttl: .seconds(1))
        }
    }
}
