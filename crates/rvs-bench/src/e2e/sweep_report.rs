//! The summary of a rate sweep: per configuration and rate the minimum,
//! median and maximum over the repeats (`pps_summary` lines and a Markdown
//! table on stderr), and issue 12's goals checked on the medians
//! (`pps_goal` lines).

use std::io::Write;

use super::bed::Lb;
use super::sweep::{name_of_rate, Plan, Point};
use super::{Out, V};

/// Names of the figures of [`Point::figures`], in order.
const FIGS: [&str; 8] = [
    "offered_pps",
    "delivered_pps",
    "delivered_share",
    "dp_ns_per_pkt",
    "cpu1_ns_per_pkt",
    "cpu0_softirq_ns_per_pkt",
    "proc_ns_per_pkt",
    "own_ns_per_pkt",
];

/// Minimum, median, maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Mmm {
    pub min: f64,
    pub med: f64,
    pub max: f64,
}

/// Min/median/max of `v` (the median of an even count is the mean of the
/// two middle values); None when empty.
pub(crate) fn mmm(v: &[f64]) -> Option<Mmm> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Some(Mmm {
        min: s[0],
        med,
        max: s[n - 1],
    })
}

/// One configuration at one rate, over the repeats.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub lb: String,
    pub target: Option<u64>,
    pub n: usize,
    pub figs: [Option<Mmm>; 8],
}

impl Row {
    fn med(&self, i: usize) -> Option<f64> {
        self.figs[i].map(|m| m.med)
    }
}

/// Groups the points by configuration and rate, in the order given.
pub(crate) fn summarize(lbs: &[Lb], rates: &[Option<u64>], points: &[Point]) -> Vec<Row> {
    let mut rows = Vec::new();
    for lb in lbs {
        let name = lb.name();
        for &t in rates {
            let ps: Vec<&Point> = points
                .iter()
                .filter(|p| p.lb() == name && p.target() == t)
                .collect();
            if ps.is_empty() {
                continue;
            }
            let figs = std::array::from_fn(|i| {
                let v: Vec<f64> = ps.iter().filter_map(|p| p.figures()[i]).collect();
                mmm(&v)
            });
            rows.push(Row {
                lb: name.clone(),
                target: t,
                n: ps.len(),
                figs,
            });
        }
    }
    rows
}

/// A goal of the issue, checked on medians.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Goal {
    pub what: String,
    pub rate: String,
    pub ratio: f64,
    pub want: &'static str,
    pub met: bool,
}

fn row<'a>(rows: &'a [Row], lb: &str, t: Option<u64>) -> Option<&'a Row> {
    rows.iter().find(|r| r.lb == lb && r.target == t)
}

/// The best median delivered rate of `lb` over all rates (a data plane that
/// collapses under overload delivers less at `max` than below it).
fn peak(rows: &[Row], lb: &str) -> Option<f64> {
    rows.iter()
        .filter(|r| r.lb == lb)
        .filter_map(|r| r.med(1))
        .max_by(f64::total_cmp)
}

/// (numerator, denominator, wanted, check) of a delivered-rate goal.
type Pair = (&'static str, &'static str, &'static str, fn(f64) -> bool);

/// rvs-af_xdp's CPU per packet (`dp_ns_per_pkt`, and `own_ns_per_pkt`)
/// at each rate at most the kernel's and nftables'; its delivered rate with the generator flat out (and its peak)
/// at least 1.5 × theirs and at least 0.9 × testpmd's over the same driver
/// (the same for rvs-af_packet against testpmd-af_packet).
pub(crate) fn goals(rows: &[Row], rates: &[Option<u64>]) -> Vec<Goal> {
    let mut g = Vec::new();
    let mut push = |what: String, rate: String, ratio: f64, want, ok: fn(f64) -> bool| {
        if ratio.is_finite() {
            g.push(Goal {
                what,
                rate,
                ratio,
                want,
                met: ok(ratio),
            });
        }
    };
    for (i, fig) in [(3, FIGS[3]), (7, FIGS[7])] {
        for &t in rates {
            let Some(x) = row(rows, "rvs-af_xdp", t).and_then(|r| r.med(i)) else {
                continue;
            };
            for other in ["kernel", "nftables"] {
                if let Some(o) = row(rows, other, t).and_then(|r| r.med(i)) {
                    let what = format!("{fig} rvs-af_xdp / {other}");
                    push(what, name_of_rate(t), x / o, "<= 1", |r| r <= 1.0);
                }
            }
        }
    }
    let pairs: [Pair; 4] = [
        ("rvs-af_xdp", "kernel", ">= 1.5", |r| r >= 1.5),
        ("rvs-af_xdp", "nftables", ">= 1.5", |r| r >= 1.5),
        ("rvs-af_xdp", "testpmd-af_xdp", ">= 0.9", |r| r >= 0.9),
        ("rvs-af_packet", "testpmd-af_packet", ">= 0.9", |r| r >= 0.9),
    ];
    for (a, b, want, ok) in pairs {
        let at_max = |lb| row(rows, lb, None).and_then(|r| r.med(1));
        if let (Some(x), Some(y)) = (at_max(a), at_max(b)) {
            push(
                format!("delivered_pps {a} / {b}"),
                "max".into(),
                x / y,
                want,
                ok,
            );
        }
        if let (Some(x), Some(y)) = (peak(rows, a), peak(rows, b)) {
            push(
                format!("delivered_pps {a} / {b}"),
                "peak".into(),
                x / y,
                want,
                ok,
            );
        }
    }
    g
}

fn f(x: Option<f64>, d: usize) -> String {
    match x {
        Some(v) if d == 0 => format!("{v:.0}"),
        Some(v) => format!("{v:.d$}"),
        None => "—".into(),
    }
}

fn span(m: Option<Mmm>, d: usize) -> String {
    match m {
        Some(m) => format!(
            "{} / {} / {}",
            f(Some(m.min), d),
            f(Some(m.med), d),
            f(Some(m.max), d)
        ),
        None => "—".into(),
    }
}

/// The summary as a Markdown table.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| config | target pps | offered pps (med) | delivered pps min / med / max | share (med) | dp ns/pkt min / med / max | CPU 1 ns/pkt (med) | CPU 0 softirq ns/pkt (med) | process ns/pkt (med) | own ns/pkt min / med / max | n |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.lb,
            name_of_rate(r.target),
            f(r.med(0), 0),
            span(r.figs[1], 0),
            f(r.med(2), 2),
            span(r.figs[3], 0),
            f(r.med(4), 0),
            f(r.med(5), 0),
            f(r.med(6), 0),
            span(r.figs[7], 0),
            r.n
        );
    }
    s
}

/// Prints the summary lines, the goals, and the Markdown tables on stderr.
pub(super) fn emit(out: &Out, rows: &[Row], plan: &Plan) {
    for r in rows {
        let mut fields = vec![
            ("case", V::S("pps_summary".into())),
            ("lb", V::S(r.lb.clone())),
            ("target_pps", r.target.map_or(V::Null, V::I)),
            ("repeats", V::I(r.n as u64)),
        ];
        let keys: Vec<[String; 3]> = FIGS
            .iter()
            .map(|k| [format!("{k}_min"), format!("{k}_med"), format!("{k}_max")])
            .collect();
        for (i, k) in keys.iter().enumerate() {
            let d = if i == 2 { 3 } else { 0 };
            let (a, b, c) = match r.figs[i] {
                Some(m) => (V::N(m.min, d), V::N(m.med, d), V::N(m.max, d)),
                None => (V::Null, V::Null, V::Null),
            };
            fields.extend([(k[0].as_str(), a), (k[1].as_str(), b), (k[2].as_str(), c)]);
        }
        out.emit(&fields);
    }
    let gs = goals(rows, plan.rates);
    let mut md = table(rows);
    md += "\n| goal | rate | ratio (medians) | wanted | met |\n| --- | --- | ---: | --- | --- |\n";
    for g in &gs {
        out.emit(&[
            ("case", V::S("pps_goal".into())),
            ("what", V::S(g.what.clone())),
            ("rate", V::S(g.rate.clone())),
            ("ratio", V::N(g.ratio, 2)),
            ("want", V::S(g.want.into())),
            ("met", V::S(g.met.to_string())),
        ]);
        md += &format!(
            "| {} | {} | {:.2} | {} | {} |\n",
            g.what,
            g.rate,
            g.ratio,
            g.want,
            if g.met { "yes" } else { "no" }
        );
    }
    let _ = writeln!(std::io::stderr().lock(), "\n{md}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(lb: &str, t: Option<u64>, delivered: f64, dp: f64) -> Row {
        let m = |x| {
            Some(Mmm {
                min: x,
                med: x,
                max: x,
            })
        };
        Row {
            lb: lb.into(),
            target: t,
            n: 3,
            figs: [
                m(delivered),
                m(delivered),
                m(1.0),
                m(dp),
                None,
                None,
                None,
                m(dp),
            ],
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let m = mmm(&[3.0, 1.0, 2.0]).expect("three values");
        assert_eq!((m.min, m.med, m.max), (1.0, 2.0, 3.0));
        assert_eq!(mmm(&[4.0, 1.0, 2.0, 3.0]).map(|m| m.med), Some(2.5));
        assert_eq!(mmm(&[]), None);
    }

    #[test]
    fn goals_compare_medians_and_say_which_are_missed() {
        let rows = [
            r("kernel", Some(100_000), 100_000.0, 2000.0),
            r("nftables", Some(100_000), 100_000.0, 2500.0),
            r("rvs-af_xdp", Some(100_000), 100_000.0, 2200.0),
            r("kernel", None, 300_000.0, 1000.0),
            r("nftables", None, 200_000.0, 1000.0),
            r("rvs-af_xdp", None, 400_000.0, 1000.0),
            r("testpmd-af_xdp", None, 420_000.0, 1000.0),
        ];
        let g = goals(&rows, &[Some(100_000), None]);
        let find = |w: &str, rate: &str| {
            g.iter()
                .find(|x| x.what == w && x.rate == rate)
                .unwrap_or_else(|| panic!("no goal {w} at {rate}"))
        };
        let k = find("dp_ns_per_pkt rvs-af_xdp / kernel", "100000");
        assert!((k.ratio - 1.1).abs() < 1e-9 && !k.met);
        assert!(find("dp_ns_per_pkt rvs-af_xdp / nftables", "100000").met);
        assert!(!find("own_ns_per_pkt rvs-af_xdp / kernel", "100000").met);
        let sat = find("delivered_pps rvs-af_xdp / kernel", "max");
        assert!((sat.ratio - 4.0 / 3.0).abs() < 1e-9 && !sat.met);
        assert!(find("delivered_pps rvs-af_xdp / nftables", "max").met);
        assert!(find("delivered_pps rvs-af_xdp / testpmd-af_xdp", "peak").met);
        assert!(!g.iter().any(|x| x.what.contains("rvs-af_packet")));
    }
}
