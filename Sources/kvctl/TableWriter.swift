// The ASCII tables of `-w table`: olekukonko/tablewriter 0.0.5 (as etcdctl 3.4 vendors it) with the settings etcdctl
// uses: upper-cased centred headers, every cell right-aligned, borders on, cells wrapped at 30 columns on spaces
// (its minimum-raggedness word wrap, so a long error message spans several lines).

enum TableWriter {
    /// tablewriter's MAX_ROW_WIDTH: cells wider than this wrap at spaces.
    static let cellWidthMax = 30
    /// tablewriter's penalty for a wrapped line that is still too long (a single word over the limit).
    private static let overflowPenalty = 100_000

    /// The whole table, each line ending in a newline, as `Table.Render` writes it.
    static func render(header: [String], rows: [[String]]) -> String {
        var widths = header.map { _ in 0 }
        let headerCells = header.enumerated().map { column, text in wrapCell(text, column, &widths) }
        let rowCells = rows.map { row in row.enumerated().map { column, text in wrapCell(text, column, &widths) } }
        let rule = "+" + widths.map { String(repeating: "-", count: $0 + 2) + "+" }.joined() + "\n"
        var out = rule
        let headerHeight = headerCells.map(\.count).max() ?? 0
        for line in 0..<headerHeight {
            out += "|"
            for (column, width) in widths.enumerated() {
                let cell = column < headerCells.count ? headerCells[column] : []
                let text = line < cell.count ? title(cell[line]) : ""
                out += " " + padCentre(text, width) + " |"
            }
            out += "\n"
        }
        out += rule
        for cells in rowCells {
            let height = cells.map(\.count).max() ?? 0
            for line in 0..<height {
                for (column, cell) in cells.enumerated() {
                    // A shorter cell is filled with two-space lines, as tablewriter's printRow does.
                    let text = line < cell.count ? cell[line] : "  "
                    out += "| " + padLeft(text, widths[column]) + " "
                }
                out += "|\n"
            }
        }
        return out + rule
    }

    /// parseDimension: the cell's lines after wrapping, widening its column as needed.
    private static func wrapCell(_ text: String, _ column: Int, _ widths: inout [Int]) -> [String] {
        let raw = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let widest = min(raw.map(displayWidth).max() ?? 0, cellWidthMax)
        // reflowText: the lines are joined again before wrapping.
        let lines = wrap(raw.joined(separator: " "), limit: widest)
        let width = max(widest, lines.map(displayWidth).max() ?? 0)
        while widths.count <= column { widths.append(0) }
        widths[column] = max(widths[column], width)
        return lines
    }

    /// WrapString: splits on spaces and wraps with the least raggedness; no word is ever split.
    static func wrap(_ text: String, limit: Int) -> [String] {
        let words = text.replacingNewlines().split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        let limit = max(limit, words.map(displayWidth).max() ?? 0)
        return wrapWords(words, limit: limit).map { $0.joined(separator: " ") }
    }

    /// WrapWords: dynamic programming over break points, minimising the sum of squared slack.
    private static func wrapWords(_ words: [String], limit: Int) -> [[String]] {
        let count = words.count
        let widths = words.map(displayWidth)
        // length(i, j): the width of words i...j on one line.
        func length(_ i: Int, _ j: Int) -> Int { widths[i...j].reduce(0, +) + (j - i) }
        var nextBreak = Array(repeating: 0, count: count)
        var cost = Array(repeating: Int(Int32.max), count: count)
        for i in stride(from: count - 1, through: 0, by: -1) {
            if length(i, count - 1) <= limit {
                cost[i] = 0
                nextBreak[i] = count
                continue
            }
            for j in (i + 1)..<count {
                let slack = limit - length(i, j - 1)
                var candidate = slack * slack + cost[j]
                if length(i, j - 1) > limit { candidate += overflowPenalty }
                if candidate < cost[i] {
                    cost[i] = candidate
                    nextBreak[i] = j
                }
            }
        }
        var lines: [[String]] = []
        var index = 0
        while index < count {
            lines.append(Array(words[index..<nextBreak[index]]))
            index = nextBreak[index]
        }
        return lines
    }

    /// tablewriter's Title: `_` becomes a space, some dots too, trimmed, upper-cased.
    static func title(_ name: String) -> String {
        var scalars = Array(name.unicodeScalars)
        for index in scalars.indices {
            if scalars[index] == "_" {
                scalars[index] = " "
            } else if scalars[index] == "." {
                let before = index != 0 && !isDigitOrSpace(scalars[index - 1])
                let after = index != scalars.count - 1 && !isDigitOrSpace(scalars[index + 1])
                if before || after { scalars[index] = " " }
            }
        }
        var text = String(String.UnicodeScalarView(scalars)).trimmingSpaces()
        if text.isEmpty && !name.isEmpty { text = " " }
        return text.uppercased()
    }

    private static func isDigitOrSpace(_ scalar: Unicode.Scalar) -> Bool {
        ("0"..."9").contains(scalar) || scalar == " "
    }

    /// NB: go-runewidth counts East Asian wide characters as two columns; kvctl counts every scalar as one, which
    /// only matters for such names in member lists.
    static func displayWidth(_ text: String) -> Int { text.unicodeScalars.count }

    private static func padLeft(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - displayWidth(text))) + text
    }

    /// tablewriter's Pad: the odd space of the gap goes to the right.
    private static func padCentre(_ text: String, _ width: Int) -> String {
        let gap = width - displayWidth(text)
        guard gap > 0 else { return text }
        return String(repeating: " ", count: gap / 2) + text + String(repeating: " ", count: gap - gap / 2)
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        String(map { $0 == "\n" ? " " : $0 })
    }

    /// strings.TrimSpace for the ASCII whitespace tablewriter's inputs can hold.
    fileprivate func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
