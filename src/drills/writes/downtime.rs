//! What `writes check` reads from the writer's files besides the ids: the
//! time each COMMIT returned (`writes.acked`, `id unix_micros` a line; a
//! working dir from before has the id alone), the reconnects it logged
//! (`writes.log`), and from those the client-visible downtime.

use serde::Serialize;

/// One acknowledged row: its id and when its COMMIT returned (None in the old format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ack {
    pub id: i64,
    pub at_micros: Option<u64>,
}

/// The line the writer appends once a COMMIT returned.
pub(super) fn acked_line(id: i64, at_micros: u64) -> String {
    format!("{id} {at_micros}")
}

/// `writes.acked`, in commit order: `id unix_micros` or `id` a line.
pub(super) fn parse_acked(text: &str) -> Vec<Ack> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let id = words.next()?.parse().ok()?;
            Some(Ack { id, at_micros: words.next().and_then(|w| w.parse().ok()) })
        })
        .collect()
}

/// How `writes.log` begins the line of each reconnect (the worker writes it, check counts it).
pub(super) const RECONNECTED: &str = "reconnected to ";

pub(super) fn reconnects(log: &str) -> usize {
    log.lines().filter(|l| l.starts_with(RECONNECTED)).count()
}

/// A stretch with no acknowledgement: from the last row acknowledged before it to the first after.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(super) struct Interruption {
    pub after_row: i64,
    pub before_row: i64,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Downtime {
    /// The longest gap between two consecutive acknowledgements: the client-visible downtime.
    pub longest: Interruption,
    /// Every gap above the threshold, in commit order.
    pub interruptions: Vec<Interruption>,
    pub threshold_seconds: f64,
}

/// A gap counts as an interruption above 3x the median gap, and never under 100 ms.
const MIN_INTERRUPTION_MICROS: u64 = 100_000;

/// The gaps between consecutive acknowledgements that both have a time;
/// None with fewer than one such pair (the old format has no times).
pub(super) fn downtime(acks: &[Ack]) -> Option<Downtime> {
    let gaps: Vec<(i64, i64, u64)> = acks
        .windows(2)
        .filter_map(|w| Some((w[0].id, w[1].id, w[1].at_micros?.saturating_sub(w[0].at_micros?))))
        .collect();
    let mut sorted: Vec<u64> = gaps.iter().map(|g| g.2).collect();
    sorted.sort_unstable();
    let median = *sorted.get(sorted.len() / 2)?;
    let threshold = (3 * median).max(MIN_INTERRUPTION_MICROS);
    let interruption = |&(after_row, before_row, micros): &(i64, i64, u64)| Interruption { after_row, before_row, seconds: seconds(micros) };
    // The first of the longest gaps, if two are equal.
    let longest = gaps.iter().rev().max_by_key(|g| g.2).map(interruption)?;
    let interruptions = gaps.iter().filter(|g| g.2 > threshold).map(interruption).collect();
    Some(Downtime { longest, interruptions, threshold_seconds: seconds(threshold) })
}

/// Microseconds as seconds, to the millisecond.
fn seconds(micros: u64) -> f64 {
    (micros as f64 / 1000.0).round() / 1000.0
}

/// For the report: `downtime 1.234 s (longest interruption, from row 812 to row 813; 1 reconnect)`.
pub(super) fn summary(d: Option<&Downtime>, reconnects: usize) -> String {
    let reconnects = format!("{reconnects} reconnect{}", if reconnects == 1 { "" } else { "s" });
    let Some(d) = d else {
        return format!("downtime unknown (no two acknowledgements with a commit time; {reconnects})");
    };
    let l = &d.longest;
    let what = if d.interruptions.is_empty() { "longest gap between acknowledgements" } else { "longest interruption" };
    let more = match d.interruptions.len() {
        0 | 1 => String::new(),
        n => format!("; {n} interruptions over {:.3} s", d.threshold_seconds),
    };
    format!("downtime {:.3} s ({what}, from row {} to row {}{more}; {reconnects})", l.seconds, l.after_row, l.before_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acks(times_ms: &[u64]) -> Vec<Ack> {
        times_ms.iter().enumerate().map(|(i, t)| Ack { id: i as i64 + 1, at_micros: Some(t * 1000) }).collect()
    }

    #[test]
    fn both_formats_parse_and_a_torn_last_line_is_skipped() {
        let text = "1\n2\n3 1700000000000001\n4 1700000000000002\nx\n";
        let a = parse_acked(text);
        assert_eq!(a.iter().map(|a| a.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert_eq!(a[1].at_micros, None);
        assert_eq!(a[3].at_micros, Some(1_700_000_000_000_002));
        assert_eq!(parse_acked(&acked_line(7, 42)), [Ack { id: 7, at_micros: Some(42) }]);
    }

    #[test]
    fn the_old_format_has_no_downtime() {
        let a = parse_acked("1\n2\n3\n");
        assert_eq!(downtime(&a), None);
        assert_eq!(downtime(&acks(&[5])), None, "one acknowledgement has no gap");
        assert_eq!(summary(None, 0), "downtime unknown (no two acknowledgements with a commit time; 0 reconnects)");
    }

    #[test]
    fn a_failover_is_one_interruption_from_the_last_row_before_to_the_first_after() {
        // Rows every 2 ms, then 1.2345 s without an acknowledgement, then on again.
        let mut t: Vec<u64> = (0..10).map(|i| i * 2).collect();
        t.extend((0..10).map(|i| 18 + 1234 + i * 2));
        let mut a = acks(&t);
        a[10].at_micros = Some(a[10].at_micros.unwrap() + 500); // 1.2345 s rounds to 1.235
        let d = downtime(&a).unwrap();
        assert_eq!(d.longest, Interruption { after_row: 10, before_row: 11, seconds: 1.235 });
        assert_eq!(d.interruptions, [d.longest]);
        assert_eq!(d.threshold_seconds, 0.1, "3x a 2 ms median is under the 100 ms floor");
        assert_eq!(summary(Some(&d), 1), "downtime 1.235 s (longest interruption, from row 10 to row 11; 1 reconnect)");
    }

    #[test]
    fn the_threshold_is_three_times_the_median_gap() {
        // A slow leader: 200 ms a commit; 500 ms is not an interruption, 700 ms is.
        let a = acks(&[0, 200, 400, 600, 1100, 1300, 1500, 2200, 2400]);
        let d = downtime(&a).unwrap();
        assert_eq!(d.threshold_seconds, 0.6);
        assert_eq!(d.interruptions, [Interruption { after_row: 7, before_row: 8, seconds: 0.7 }]);
        // Two interruptions: both listed, the longest named.
        let a = acks(&[0, 1, 2, 3, 403, 404, 405, 1405, 1406]);
        let d = downtime(&a).unwrap();
        assert_eq!(d.interruptions.iter().map(|i| (i.after_row, i.before_row)).collect::<Vec<_>>(), [(4, 5), (7, 8)]);
        assert_eq!(summary(Some(&d), 2), "downtime 1.000 s (longest interruption, from row 7 to row 8; 2 interruptions over 0.100 s; 2 reconnects)");
    }

    #[test]
    fn no_gap_above_the_threshold_is_no_interruption_but_still_a_downtime() {
        let d = downtime(&acks(&[0, 3, 5, 9, 10])).unwrap();
        assert!(d.interruptions.is_empty());
        assert_eq!(summary(Some(&d), 0), "downtime 0.004 s (longest gap between acknowledgements, from row 3 to row 4; 0 reconnects)");
    }

    #[test]
    fn non_contiguous_ids_and_mixed_formats_pair_only_timed_neighbours() {
        // Row 4's COMMIT had an unknown outcome: the writer went on with 5.
        let a = parse_acked("1\n2\n3 1000000\n5 3000000\n6 3001000\n");
        let d = downtime(&a).unwrap();
        assert_eq!(d.longest, Interruption { after_row: 3, before_row: 5, seconds: 2.0 });
    }

    #[test]
    fn reconnects_are_counted_from_the_log() {
        let log = "row 9 not acknowledged: connection closed; looking for the leader\nreconnected to pg2 after 3 attempts, 1.2 s (last error: pg1: connection refused)\nstopped after 10 minutes at row 99\n";
        assert_eq!(reconnects(log), 1);
        assert_eq!(reconnects(""), 0);
    }
}
