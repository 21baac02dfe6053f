/// How long a fetched document may be considered fresh, from its HTTP caching headers (RFC 9111 §4.2.1):
/// `Cache-Control: max-age` first, then `Expires` relative to `Date` (or to now).
public enum CacheLifetime {
    /// The lifetime in seconds, or nil when the headers do not give one. `no-cache` and `no-store` give 0
    /// (the caller clamps it to its minimum refresh interval).
    public static func seconds(cacheControl: String?, expires: String?, date: String?, now: Double) -> Double? {
        if let cacheControl {
            var maxAge: Double?
            for directive in cacheControl.split(separator: ",") {
                let parts = directive.split(separator: "=", maxSplits: 1)
                let name = parts[0].trimmingASCIISpaces().lowercased()
                if name == "no-cache" || name == "no-store" { return 0 }
                if name == "max-age", parts.count == 2 {
                    let value = parts[1].trimmingASCIISpaces().trimmingQuotes()
                    if let seconds = Int(value), seconds >= 0 { maxAge = Double(seconds) }
                }
            }
            if let maxAge { return maxAge }
        }
        if let expires {
            // RFC 9111 §5.3: an invalid Expires (such as "0") means already expired.
            guard let expiry = HTTPDate.parse(expires) else { return 0 }
            let reference = date.flatMap(HTTPDate.parse) ?? now
            return max(expiry - reference, 0)
        }
        return nil
    }
}

/// IMF-fixdate, the one HTTP date format senders must use (RFC 9110 §5.6.7):
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
public enum HTTPDate {
    /// Seconds since the epoch, or nil when `text` is not an IMF-fixdate.
    public static func parse(_ text: String) -> Double? {
        let fields = text.split(separator: " ")
        guard fields.count == 6, fields[0].hasSuffix(","), fields[5] == "GMT",
            let day = Int(fields[1]), (1...31).contains(day),
            let month = months.firstIndex(of: String(fields[2])),
            let year = Int(fields[3]), year >= 1970
        else { return nil }
        let clock = fields[4].split(separator: ":")
        guard clock.count == 3, let hour = Int(clock[0]), let minute = Int(clock[1]), let second = Int(clock[2]),
            (0..<24).contains(hour), (0..<60).contains(minute), (0...60).contains(second)
        else { return nil }
        let days = daysFromCivil(year: year, month: month + 1, day: day)
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second)
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

extension Substring {
    fileprivate func trimmingASCIISpaces() -> Substring {
        var result = self
        while result.first == " " || result.first == "\t" { result.removeFirst() }
        while result.last == " " || result.last == "\t" { result.removeLast() }
        return result
    }

    fileprivate func trimmingQuotes() -> Substring {
        guard count >= 2, first == "\"", last == "\"" else { return self }
        return dropFirst().dropLast()
    }
}
