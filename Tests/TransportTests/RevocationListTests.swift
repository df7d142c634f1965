internal import Foundation
internal import Testing
@testable internal import Transport

/// Lists made with `openssl ca -gencrl` (an EC test CA; nextUpdate in 2126, so a GeneralizedTime).
@Suite struct RevocationListTests {
    /// Revokes serial numbers 01 and 8F2A (DER-encoded with a leading zero byte: 00 8F 2A).
    static let twoRevoked = """
        -----BEGIN X509 CRL-----
        MIHXMH8CAQEwCgYIKoZIzj0EAwIwEjEQMA4GA1UEAwwHdGVzdC1jYRcNMjYxMjA3
        MTYxMDQ2WhgPMjEyNjExMTMxNjEwNDZaMCowEgIBARcNMjYxMjA3MDAwMDAwWjAU
        AgMAjyoXDTI2MTIwNzAwMDAwMFqgDjAMMAoGA1UdFAQDAgEBMAoGCCqGSM49BAMC
        A0gAMEUCIET7SV1c9hn/zQOG7CjVEKTPByE5v/cmQLurf6DChLXgAiEAwxc+cYA1
        uwkm6rFD0Gg/GuiYtW3fWK6bAmWvjAz6wWc=
        -----END X509 CRL-----
        """
    /// Revokes nothing (no revokedCertificates field at all).
    static let noneRevoked = """
        -----BEGIN X509 CRL-----
        MIGsMFMCAQEwCgYIKoZIzj0EAwIwEjEQMA4GA1UEAwwHdGVzdC1jYRcNMjYxMjA3
        MTYxMDQ2WhgPMjEyNjExMTMxNjEwNDZaoA4wDDAKBgNVHRQEAwIBAjAKBggqhkjO
        PQQDAgNJADBGAiEA/oBj4kelQwYEdrRE1nGkeoeQZaqUoC83bMFzJhB/FvwCIQCq
        mb1x7zxLvfJVBf1k5IrPcOr3j5Wfel6LS3vkx6GM9Q==
        -----END X509 CRL-----
        """

    static func written(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("crl-\(UUID().uuidString).pem").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func revokedSerialsAreFoundWithOrWithoutLeadingZeros() throws {
        let path = try Self.written(Self.twoRevoked)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let list = try RevocationList.load(path)
        #expect(list.serials == [[0x01], [0x8F, 0x2A]])
        #expect(list.revokes(serial: [0x8F, 0x2A]))
        #expect(list.revokes(serial: [0x00, 0x8F, 0x2A]))
        #expect(list.revokes(serial: [0x01]))
        #expect(!list.revokes(serial: [0x03]))
        #expect(!list.revokes(serial: [0x2A]))
    }

    @Test func aListWithoutEntriesRevokesNothing() throws {
        let path = try Self.written(Self.noneRevoked)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try RevocationList.load(path).serials.isEmpty)
    }

    @Test func derIsReadAsWellAsPEM() throws {
        let body = Self.twoRevoked.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        let der = try #require(Data(base64Encoded: body))
        #expect(try RevocationList(derEncoded: [UInt8](der)).serials.count == 2)
    }

    @Test func somethingElseIsRefused() throws {
        let path = try Self.written("not a list")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: RevocationList.Invalid.self) { try RevocationList.load(path) }
        #expect(throws: RevocationList.Invalid.self) { try RevocationList(derEncoded: [0x30, 0x03, 0x02, 0x01, 0x01]) }
    }
}
