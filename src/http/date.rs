//! The `Date` response header: the current time as an IMF-fixdate, formatted once per second.
//!
//! RFC 9110 §6.6.1: "An origin server with a clock ... MUST generate a Date header field in all
//! 2xx (Successful), 3xx (Redirection), and 4xx (Client Error) responses, and MAY generate a Date
//! header field in 1xx (Informational) and 5xx (Server Error) responses." This server sends it
//! on every response it encodes ([`crate::http::Response::encode`]), `101` and the loop's own
//! error responses included; the bare `100 Continue` is a fixed string without one.
//!
//! Time enters as the system clock (`SystemTime::now`, a vDSO read, no syscall, on Linux); it
//! leaves as the 29 bytes `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7 `IMF-fixdate`).
//! Responses are encoded on two kinds of threads — worker threads (the handler's responses,
//! the `101`) and event-loop threads (error responses, `408`, `503`, inline handlers) — so the
//! formatted string is cached **per thread**: a thread-local `(second, bytes)` pair, reformatted
//! only when a response is encoded in a new second. No lock, nothing shared, and each thread
//! formats at most once per second however many responses it writes. The conversion from days
//! to a civil date is Howard Hinnant's `civil_from_days`, written out here rather than pulled in
//! with a date crate.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) const IMF_FIXDATE_LEN: usize = 29;

/// The last instant an IMF-fixdate can spell (its year has four digits):
/// `Fri, 31 Dec 9999 23:59:59 GMT`. Later clocks are clamped to it.
const MAX_SECS: u64 = 253_402_300_799;

const SECS_PER_DAY: u64 = 86_400;

/// `day-name` (RFC 9110 §5.6.7), indexed by days since a Sunday.
const DAY_NAMES: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];

/// `month` (RFC 9110 §5.6.7), January first.
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

thread_local! {
    /// This thread's last formatted date and the second it is for. `u64::MAX` never matches:
    /// [`cached`] clamps every key to [`MAX_SECS`].
    static CACHE: Cell<(u64, [u8; IMF_FIXDATE_LEN])> =
        const { Cell::new((u64::MAX, [0; IMF_FIXDATE_LEN])) };
}

#[cfg(test)]
thread_local! {
    /// Test-only count of formatting runs on this thread.
    static FORMATS: Cell<usize> = const { Cell::new(0) };
}

/// The year, month (1..=12) and day (1..=31) of the proleptic Gregorian calendar that is
/// `days` days after 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
/// Eras are 400-year cycles of 146,097 days starting on a 1 March, so that the leap day is
/// the last day of its year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from 1 March, [0, 365]
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Fills `out` with the last `out.len()` decimal digits of `n`, zero-padded.
pub(super) fn put_digits(out: &mut [u8], mut n: u64) {
    for slot in out.iter_mut().rev() {
        // A digit: always < 10, so the cast cannot truncate.
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `unix_secs` (seconds since 1970-01-01T00:00:00Z) as an IMF-fixdate, e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`. Times past the year 9999 are clamped to its last second.
pub(crate) fn imf_fixdate(unix_secs: u64) -> [u8; IMF_FIXDATE_LEN] {
    #[cfg(test)]
    FORMATS.with(|n| n.set(n.get() + 1));
    let secs = unix_secs.min(MAX_SECS);
    let (days, time) = (secs / SECS_PER_DAY, secs % SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 4).
    let weekday = DAY_NAMES[((days + 4) % 7) as usize];
    let month = MONTHS[(month - 1) as usize];
    let mut out = *b"Www, DD Mon YYYY HH:MM:SS GMT";
    out[0..3].copy_from_slice(weekday);
    put_digits(&mut out[5..7], day);
    out[8..11].copy_from_slice(month);
    put_digits(&mut out[12..16], year);
    put_digits(&mut out[17..19], time / 3600);
    put_digits(&mut out[20..22], time / 60 % 60);
    put_digits(&mut out[23..25], time % 60);
    out
}

/// The date for `unix_secs` from this thread's cache, formatting it only if the cached one is
/// for another second.
fn cached(unix_secs: u64) -> [u8; IMF_FIXDATE_LEN] {
    let secs = unix_secs.min(MAX_SECS);
    CACHE.with(|cache| {
        let (at, date) = cache.get();
        if at == secs {
            return date;
        }
        let date = imf_fixdate(secs);
        cache.set((secs, date));
        date
    })
}

/// The current time as an IMF-fixdate, from this thread's once-per-second cache. A clock set
/// before 1970 reads as 1970-01-01.
pub(crate) fn now() -> [u8; IMF_FIXDATE_LEN] {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    cached(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(secs: u64) -> String {
        String::from_utf8(imf_fixdate(secs).to_vec()).unwrap()
    }

    #[test]
    fn known_dates() {
        // Cross-checked with Python's email.utils.formatdate(t, usegmt=True).
        let table: &[(u64, &str)] = &[
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            // RFC 9110 §5.6.7's example.
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (946_684_799, "Fri, 31 Dec 1999 23:59:59 GMT"),
            // 2000 is a leap year (divisible by 400): 29 February exists.
            (951_868_799, "Tue, 29 Feb 2000 23:59:59 GMT"),
            (951_868_800, "Wed, 01 Mar 2000 00:00:00 GMT"),
            (1_672_531_200, "Sun, 01 Jan 2023 00:00:00 GMT"),
            (1_709_208_000, "Thu, 29 Feb 2024 12:00:00 GMT"),
            (1_796_162_443, "Tue, 01 Dec 2026 22:00:43 GMT"),
            // 2100 is not (divisible by 100, not by 400): 28 February, then 1 March.
            (4_107_456_000, "Sun, 28 Feb 2100 00:00:00 GMT"),
            (4_107_542_400, "Mon, 01 Mar 2100 00:00:00 GMT"),
            (13_574_585_228, "Tue, 29 Feb 2400 06:07:08 GMT"),
            (MAX_SECS, "Fri, 31 Dec 9999 23:59:59 GMT"),
            // Clamped, never a five-digit year.
            (u64::MAX, "Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for (secs, expected) in table {
            assert_eq!(text(*secs), *expected, "{secs}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_previous_one() {
        // civil_from_days against a plain day-by-day calendar walk, 1970..2370.
        let (mut year, mut month, mut day) = (1970, 1, 1);
        for days in 0..146_097 {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let month_len = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > month_len {
                (day, month) = (1, month + 1);
                if month > 12 {
                    (month, year) = (1, year + 1);
                }
            }
        }
    }

    #[test]
    fn formatted_once_per_second_per_thread() {
        let formats = || FORMATS.with(Cell::get);
        let before = formats();
        assert_eq!(&cached(1_796_162_443), b"Tue, 01 Dec 2026 22:00:43 GMT");
        assert_eq!(&cached(1_796_162_443), b"Tue, 01 Dec 2026 22:00:43 GMT");
        assert_eq!(formats() - before, 1, "the same second is formatted once");
        assert_eq!(&cached(1_796_162_444), b"Tue, 01 Dec 2026 22:00:44 GMT");
        assert_eq!(formats() - before, 2, "a new second is formatted again");
        // Another thread has its own cache.
        let other = std::thread::spawn(|| {
            let before = FORMATS.with(Cell::get);
            cached(1_796_162_444);
            FORMATS.with(Cell::get) - before
        });
        assert_eq!(other.join().unwrap(), 1);
    }

    #[test]
    fn now_is_a_well_formed_current_date() {
        let date = String::from_utf8(now().to_vec()).unwrap();
        assert_eq!(date.len(), IMF_FIXDATE_LEN);
        assert!(date.ends_with(" GMT"), "{date}");
        let year: u32 = date[12..16].parse().unwrap();
        assert!((2024..=9999).contains(&year), "{date}");
    }
}
