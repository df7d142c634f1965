// A command-line parser with pflag's rules and messages (spf13/pflag as vendored by etcdctl 3.4): flags may follow
// positional arguments, `--` ends flags, `--name=value`, `--name value`, `-w json`, `-wjson`, bool flags take no
// separate value, and errors read exactly like pflag's ("unknown flag: --x", "flag needs an argument: --limit").

/// The type of a flag's value, which decides how it is parsed.
enum FlagKind {
    case bool, string, int64, duration, stringSlice
}

/// One flag a command accepts.
struct FlagSpec {
    /// Long name, without dashes.
    var name: String
    /// One-letter form, if any.
    var shorthand: Character?
    /// How its value parses.
    var kind: FlagKind
    /// Its value when not given, in the textual form pflag parses.
    var defaultValue: String
}

/// A parsed flag value.
enum FlagValue {
    case bool(Bool)
    case string(String)
    case int64(Int64)
    case duration(Duration)
    case strings([String])
}

/// The outcome of parsing a command line against a flag set.
struct ParsedFlags {
    /// Value of every flag in the set: its default unless it was given.
    var values: [String: FlagValue] = [:]
    /// Names of flags given on the command line (pflag's `Changed`).
    var changed: Set<String> = []
    /// Non-flag arguments in order.
    var positional: [String] = []

    func bool(_ name: String) -> Bool {
        guard case .bool(let value)? = values[name] else { preconditionFailure("flag \(name) is not a bool") }
        return value
    }

    func string(_ name: String) -> String {
        guard case .string(let value)? = values[name] else { preconditionFailure("flag \(name) is not a string") }
        return value
    }

    func int64(_ name: String) -> Int64 {
        guard case .int64(let value)? = values[name] else { preconditionFailure("flag \(name) is not an int64") }
        return value
    }

    func duration(_ name: String) -> Duration {
        guard case .duration(let value)? = values[name] else { preconditionFailure("flag \(name) is not a duration") }
        return value
    }

    func strings(_ name: String) -> [String] {
        guard case .strings(let value)? = values[name] else { preconditionFailure("flag \(name) is not a slice") }
        return value
    }
}

/// A pflag parse error; `message` is pflag's text.
struct FlagError: Error {
    var message: String
}

/// Parses `arguments` against `specs` the way pflag's `FlagSet.Parse` does with interspersed arguments.
struct FlagParser {
    /// The accepted flags.
    let specs: [FlagSpec]

    func parse(_ arguments: [String]) throws(FlagError) -> ParsedFlags {
        var parsed = ParsedFlags()
        for spec in specs {
            parsed.values[spec.name] = try Self.value(of: spec, from: spec.defaultValue, previous: nil)
        }
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            if argument.count < 2 || !argument.hasPrefix("-") {
                parsed.positional.append(argument)
            } else if argument == "--" {
                parsed.positional.append(contentsOf: remaining)
                break
            } else if argument.hasPrefix("--") {
                try parseLong(argument, &remaining, &parsed)
            } else {
                try parseShort(argument, &remaining, &parsed)
            }
        }
        return parsed
    }

    private func parseLong(_ argument: String, _ remaining: inout ArraySlice<String>, _ parsed: inout ParsedFlags)
        throws(FlagError)
    {
        let body = argument.dropFirst(2)
        if body.isEmpty || body.hasPrefix("-") || body.hasPrefix("=") {
            throw FlagError(message: "bad flag syntax: \(argument)")
        }
        let parts = body.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard let spec = specs.first(where: { $0.name == name }) else {
            throw FlagError(message: "unknown flag: --\(name)")
        }
        let text: String
        if parts.count == 2 {
            text = String(parts[1])
        } else if spec.kind == .bool {
            text = "true"
        } else if let next = remaining.popFirst() {
            text = next
        } else {
            throw FlagError(message: "flag needs an argument: \(argument)")
        }
        try set(spec, text, &parsed)
    }

    private func parseShort(_ argument: String, _ remaining: inout ArraySlice<String>, _ parsed: inout ParsedFlags)
        throws(FlagError)
    {
        var shorthands = Substring(argument.dropFirst())
        while let letter = shorthands.first {
            guard let spec = specs.first(where: { $0.shorthand == letter }) else {
                let quoted = GoFormat.quoteRune(letter.unicodeScalars.first!)
                throw FlagError(message: "unknown shorthand flag: \(quoted) in -\(shorthands)")
            }
            let rest = shorthands.dropFirst()
            let text: String
            if rest.hasPrefix("=") {
                text = String(rest.dropFirst())
                shorthands = ""
            } else if spec.kind == .bool {
                text = "true"
                shorthands = rest
            } else if !rest.isEmpty {
                text = String(rest)
                shorthands = ""
            } else if let next = remaining.popFirst() {
                text = next
                shorthands = ""
            } else {
                let quoted = GoFormat.quoteRune(letter.unicodeScalars.first!)
                throw FlagError(message: "flag needs an argument: \(quoted) in -\(shorthands)")
            }
            try set(spec, text, &parsed)
        }
    }

    private func set(_ spec: FlagSpec, _ text: String, _ parsed: inout ParsedFlags) throws(FlagError) {
        let previous = parsed.changed.contains(spec.name) ? parsed.values[spec.name] : nil
        do {
            parsed.values[spec.name] = try Self.value(of: spec, from: text, previous: previous)
        } catch {
            let flagName = spec.shorthand.map { "-\($0), --\(spec.name)" } ?? "--\(spec.name)"
            let quotedValue = GoFormat.quote(text), quotedName = GoFormat.quote(flagName)
            throw FlagError(message: "invalid argument \(quotedValue) for \(quotedName) flag: \(error.message)")
        }
        parsed.changed.insert(spec.name)
    }

    /// Parses one value; a string slice given again appends to what was given before (pflag's StringSlice).
    static func value(of spec: FlagSpec, from text: String, previous: FlagValue?) throws(FlagError) -> FlagValue {
        switch spec.kind {
        case .bool:
            return .bool(try GoParse.bool(text))
        case .string:
            return .string(text)
        case .int64:
            return .int64(try GoParse.int64(text, base: 0))
        case .duration:
            return .duration(try GoParse.duration(text))
        case .stringSlice:
            let items =
                text.isEmpty ? [] : text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if case .strings(let earlier)? = previous { return .strings(earlier + items) }
            return .strings(items)
        }
    }
}

/// Go's strconv and time parsers, with their error texts.
enum GoParse {
    static func bool(_ text: String) throws(FlagError) -> Bool {
        switch text {
        case "1", "t", "T", "TRUE", "true", "True": return true
        case "0", "f", "F", "FALSE", "false", "False": return false
        default: throw FlagError(message: "strconv.ParseBool: parsing \(GoFormat.quote(text)): invalid syntax")
        }
    }

    /// strconv.ParseInt(text, base, 64), base 0 (prefix-detected) or 10 or 16.
    static func int64(_ text: String, base: Int) throws(FlagError) -> Int64 {
        let function = "strconv.ParseInt"
        let syntax = FlagError(message: "\(function): parsing \(GoFormat.quote(text)): invalid syntax")
        let range = FlagError(message: "\(function): parsing \(GoFormat.quote(text)): value out of range")
        var digits = Substring(text)
        var negative = false
        if digits.hasPrefix("+") || digits.hasPrefix("-") {
            negative = digits.first == "-"
            digits = digits.dropFirst()
        }
        var radix = base
        if base == 0 {
            radix = 10
            let lower = digits.lowercased()
            if lower.hasPrefix("0x") {
                radix = 16
                digits = digits.dropFirst(2)
            } else if lower.hasPrefix("0b") {
                radix = 2
                digits = digits.dropFirst(2)
            } else if lower.hasPrefix("0o") {
                radix = 8
                digits = digits.dropFirst(2)
            } else if digits.hasPrefix("0") && digits.count > 1 {
                radix = 8
                digits = digits.dropFirst()
            }
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.hexDigitValue.map { $0 < radix } == true })
        else { throw syntax }
        guard let magnitude = UInt64(digits, radix: radix) else { throw range }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { throw range }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { throw range }
        return Int64(magnitude)
    }

    /// strconv.ParseUint(text, base, 64) for a fixed base (no prefix, no sign, no underscores), as etcdctl parses
    /// hex member IDs. Like Go, it reports overflow as soon as it happens, before looking at later characters.
    static func uint64(_ text: String, base: Int) throws(FlagError) -> UInt64 {
        let quoted = GoFormat.quote(text)
        let syntax = FlagError(message: "strconv.ParseUint: parsing \(quoted): invalid syntax")
        guard !text.isEmpty else { throw syntax }
        var value: UInt64 = 0
        for character in text {
            guard character.isASCII, let digit = character.hexDigitValue, digit < base else { throw syntax }
            let (shifted, overflowShift) = value.multipliedReportingOverflow(by: UInt64(base))
            let (sum, overflowAdd) = shifted.addingReportingOverflow(UInt64(digit))
            guard !overflowShift && !overflowAdd else {
                throw FlagError(message: "strconv.ParseUint: parsing \(quoted): value out of range")
            }
            value = sum
        }
        return value
    }

    /// time.ParseDuration.
    static func duration(_ text: String) throws(FlagError) -> Duration {
        let invalid = FlagError(message: "time: invalid duration \(GoFormat.quote(text))")
        var rest = Substring(text)
        var negative = false
        if rest.hasPrefix("-") || rest.hasPrefix("+") {
            negative = rest.first == "-"
            rest = rest.dropFirst()
        }
        if rest == "0" { return .zero }
        guard !rest.isEmpty else { throw invalid }
        var totalNanoseconds: Double = 0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, number != ".", number.filter({ $0 == "." }).count <= 1, let value = Double(number)
            else { throw invalid }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { !($0.isASCII && ($0.isNumber || $0 == ".")) }
            guard !unit.isEmpty else {
                throw FlagError(message: "time: missing unit in duration \(GoFormat.quote(text))")
            }
            rest = rest.dropFirst(unit.count)
            let scale: Double =
                switch unit {
                case "ns": 1
                case "us", "µs", "μs": 1e3
                case "ms": 1e6
                case "s": 1e9
                case "m": 60e9
                case "h": 3600e9
                default:
                    let quotedUnit = GoFormat.quote(String(unit))
                    throw FlagError(message: "time: unknown unit \(quotedUnit) in duration \(GoFormat.quote(text))")
                }
            totalNanoseconds += value * scale
        }
        let nanoseconds = Int64(negative ? -totalNanoseconds : totalNanoseconds)
        return .nanoseconds(nanoseconds)
    }
}
