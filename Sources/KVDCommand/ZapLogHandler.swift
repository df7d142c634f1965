internal import Foundation
internal import Logging

/// Log lines in the shape of etcd 3.5's zap JSON logger (`--logger zap`), one object per line:
/// `{"level":"info","ts":"2026-12-06T15:20:00.123Z","caller":"Server/Member.swift:230","msg":"…",…}`,
/// the metadata as further string fields, so that log shippers and scripts written for etcd's
/// logs (`jq 'select(.msg == "ready to serve client requests")'`) read kvd's.
struct ZapLogHandler: LogHandler {
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    /// Where the lines go: standard error or standard output (etcd's `--log-outputs`).
    let output: FileHandle

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { $1 } }
        if let extra = event.metadata { fields.merge(extra) { $1 } }
        let caller = "\(event.file.split(separator: "/").suffix(2).joined(separator: "/")):\(event.line)"
        var line = "{\"level\":\(Self.quoted(Self.zapLevel(event.level))),\"ts\":\(Self.quoted(Self.timestamp()))"
        line += ",\"caller\":\(Self.quoted(caller)),\"msg\":\(Self.quoted(event.message.description))"
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            line += ",\(Self.quoted(key)):\(Self.quoted(value.description))"
        }
        output.write(Data((line + "}\n").utf8))
    }

    /// zap's level names.
    static func zapLevel(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "debug"
        case .info, .notice: "info"
        case .warning: "warn"
        case .error: "error"
        case .critical: "fatal"
        }
    }

    /// zap's ISO 8601 time in UTC with milliseconds; one style for every line.
    static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func timestamp() -> String { timestampStyle.format(Date()) }

    /// A JSON string literal.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
