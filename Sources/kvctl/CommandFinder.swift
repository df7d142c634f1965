// Cobra's command lookup (spf13/cobra as vendored by etcdctl 3.4, with EnablePrefixMatching).

enum CommandFinder {
    /// The first word that is not a flag or a flag's value (cobra's stripFlags), and its index.
    static func firstWord(_ arguments: [String], flags: [FlagSpec]) -> (String, Int)? {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" { return nil }
            if argument.hasPrefix("--") && !argument.contains("=") {
                let spec = flags.first { $0.name == argument.dropFirst(2) }
                if spec?.kind != .bool { index += 1 }  // '--flag arg': skip the value
            } else if argument.hasPrefix("-") && !argument.contains("=") && argument.count == 2 {
                let spec = flags.first { $0.shorthand == argument.last }
                if spec?.kind != .bool { index += 1 }  // '-f arg'
            } else if !argument.isEmpty && !argument.hasPrefix("-") {
                return (argument, index)
            }
            index += 1
        }
        return nil
    }

    /// An exact name, or a prefix of exactly one name.
    static func match(_ typed: String, among names: [String]) -> String? {
        if names.contains(typed) { return typed }
        let matches = names.filter { $0.hasPrefix(typed) }
        return matches.count == 1 ? matches[0] : nil
    }

    /// Cobra's "Did you mean this?" block: names within edit distance 2 or starting with what was typed.
    static func suggestions(for typed: String) -> String {
        let lower = typed.lowercased()
        let close = etcdctlCommands.filter { levenshtein(lower, $0) <= 2 || $0.hasPrefix(lower) }
        guard !close.isEmpty else { return "" }
        return "\n\nDid you mean this?\n" + close.map { "\t\($0)\n" }.joined()
    }

    private static func levenshtein(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}
