// Go's formatting rules that etcdctl's output depends on: `%q` quoting (strconv.Quote), `%x`, the `\x` hex form of
// `--hex`, strconv's unquoting of the txn input, time.Duration's String and go-humanize's Bytes.

import Foundation

enum GoFormat {
    /// strconv.Quote over raw bytes: invalid UTF-8 becomes `\xNN`, unprintable runes `\uNNNN`.
    static func quote(_ bytes: [UInt8]) -> String {
        var result = "\""
        var index = 0
        while index < bytes.count {
            let (scalar, width) = decodeRune(bytes, at: index)
            if let scalar {
                result += escape(scalar)
            } else {
                result += "\\x" + hex2(bytes[index])
            }
            index += width
        }
        return result + "\""
    }

    static func quote(_ text: String) -> String { quote(Array(text.utf8)) }

    /// Go's `%q` of one rune: 'x'.
    static func quoteRune(_ scalar: Unicode.Scalar) -> String {
        if scalar == "'" { return "'\\''" }
        if scalar == "\"" { return "'\"'" }
        return "'" + escape(scalar) + "'"
    }

    private static func escape(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\"": return "\\\""
        case "\\": return "\\\\"
        default: break
        }
        if isPrint(scalar) { return String(Character(scalar)) }
        switch scalar.value {
        case 0x07: return "\\a"
        case 0x08: return "\\b"
        case 0x0C: return "\\f"
        case 0x0A: return "\\n"
        case 0x0D: return "\\r"
        case 0x09: return "\\t"
        case 0x0B: return "\\v"
        case ..<0x20, 0x7F: return "\\x" + hex2(UInt8(scalar.value))
        case ..<0x10000: return "\\u" + hexPadded(scalar.value, width: 4)
        default: return "\\U" + hexPadded(scalar.value, width: 8)
        }
    }

    /// unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    static func isPrint(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.value < 0x80 { return scalar.value >= 0x20 && scalar.value < 0x7F }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .nonspacingMark, .spacingMark, .enclosingMark,
            .decimalNumber, .letterNumber, .otherNumber,
            .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation,
            .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            return true
        default:
            return false
        }
    }

    /// Decodes one UTF-8 rune the way Go's utf8.DecodeRune does: nil (width 1) for any invalid sequence.
    static func decodeRune(_ bytes: [UInt8], at index: Int) -> (Unicode.Scalar?, Int) {
        let first = bytes[index]
        if first < 0x80 { return (Unicode.Scalar(first), 1) }
        let (width, minimum, initial): (Int, UInt32, UInt32) =
            switch first {
            case 0xC2...0xDF: (2, 0x80, UInt32(first & 0x1F))
            case 0xE0...0xEF: (3, 0x800, UInt32(first & 0x0F))
            case 0xF0...0xF4: (4, 0x10000, UInt32(first & 0x07))
            default: (0, 0, 0)
            }
        guard width > 0, index + width <= bytes.count else { return (nil, 1) }
        var value = initial
        for offset in 1..<width {
            let byte = bytes[index + offset]
            guard byte & 0xC0 == 0x80 else { return (nil, 1) }
            value = value << 6 | UInt32(byte & 0x3F)
        }
        guard value >= minimum, value <= 0x10FFFF, let scalar = Unicode.Scalar(value) else { return (nil, 1) }
        return (scalar, width)
    }

    static func hex2(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }

    static func hexPadded(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// Lower-case hex of all bytes (`hex.EncodeToString`).
    static func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map(hex2).joined() }

    /// `%16x`: lower-case hex, right-aligned in 16 columns with spaces (etcdctl's member add/remove lines).
    static func hexPadded16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: " ", count: max(0, 16 - digits.count)) + digits
    }

    /// time.Duration.String: "0s", "812ns", "1.5µs", "3.412516ms", "2.000608801s", "1m2.5s", "1h0m0s".
    static func duration(nanoseconds: Int64) -> String {
        if nanoseconds == 0 { return "0s" }
        let sign = nanoseconds < 0 ? "-" : ""
        let magnitude = nanoseconds.magnitude
        if magnitude < 1_000_000_000 {
            let (unit, precision): (String, Int) =
                switch magnitude {
                case ..<1_000: ("ns", 0)
                case ..<1_000_000: ("µs", 3)
                default: ("ms", 6)
                }
            return sign + decimal(magnitude, fractionDigits: precision) + unit
        }
        var rest = magnitude / 1_000_000_000
        var text = decimal(magnitude % 60_000_000_000, fractionDigits: 9) + "s"
        rest /= 60
        if rest > 0 {
            text = "\(rest % 60)m" + text
            rest /= 60
            if rest > 0 { text = "\(rest)h" + text }
        }
        return sign + text
    }

    /// `value / 10^fractionDigits` with the fraction's trailing zeros (and a bare point) dropped (Go's fmtFrac).
    private static func decimal(_ value: UInt64, fractionDigits: Int) -> String {
        if fractionDigits == 0 { return "\(value)" }
        var scale: UInt64 = 1
        for _ in 0..<fractionDigits { scale *= 10 }
        let whole = value / scale
        var fraction = String(value % scale)
        fraction = String(repeating: "0", count: fractionDigits - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? "\(whole)" : "\(whole).\(fraction)"
    }

    /// go-humanize's Bytes (SI units, as etcdctl prints DB sizes): "9 B", "16 kB", "2.1 MB".
    static func bytes(_ size: UInt64) -> String {
        if size < 10 { return "\(size) B" }
        let suffixes = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
        let exponent = (log(Double(size)) / log(1000.0)).rounded(.down)
        let value = (Double(size) / pow(1000.0, exponent) * 10 + 0.5).rounded(.down) / 10
        let digits = String(format: value < 10 ? "%.1f" : "%.0f", value)
        return digits + " " + suffixes[Int(exponent)]
    }
}
