//! How much an evaluation score on a few dozen questions can be trusted: the Wilson interval
//! around an accuracy, and the exact McNemar test between two runs on the same questions.
//! Eval sets are small (15-35 questions), so intervals are wide and tests are exact rather
//! than normal approximations.

use std::fmt;

use serde::{Serialize, Serializer};

/// The normal quantile for a two-sided 95% interval.
pub const Z95: f64 = 1.959964;

/// The significance level below which a paired difference is called real.
pub const ALPHA: f64 = 0.05;

/// The Wilson score interval (95%) for `correct` successes out of `total`; `(0, 1)` when
/// there is nothing to go on. Unlike the normal interval it stays inside [0, 1] and is not
/// zero-width at 0/n or n/n.
pub fn wilson(correct: usize, total: usize) -> (f64, f64) {
    if total == 0 {
        return (0.0, 1.0);
    }
    let n = total as f64;
    let p = correct.min(total) as f64 / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// The exact two-sided McNemar p-value for discordant pairs: `b` questions only the first
/// run got right, `c` only the second. Under "no difference" each discordant question is a
/// fair coin, so p = 2·P(X ≤ min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1.
pub fn mcnemar_exact(b: usize, c: usize) -> f64 {
    let n = b + c;
    let k = b.min(c);
    // Terms C(n, i) / 2^n in log space, so a thousand discordant pairs neither overflow the
    // binomial coefficients nor underflow 2^-n before they meet.
    let mut log_term = -(n as f64) * std::f64::consts::LN_2;
    let mut tail = 0.0;
    for i in 0..=k {
        tail += log_term.exp();
        log_term += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
    }
    (2.0 * tail).min(1.0)
}

/// An accuracy as a count, so its interval can be given beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accuracy {
    pub correct: usize,
    pub total: usize,
}

impl Accuracy {
    pub fn new(correct: usize, total: usize) -> Accuracy {
        Accuracy { correct, total }
    }

    pub fn rate(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }

    /// The 95% Wilson interval.
    pub fn ci(&self) -> (f64, f64) {
        wilson(self.correct, self.total)
    }
}

/// `46.7% (95% CI 24.8-69.9%, 7/15)`
impl fmt::Display for Accuracy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lo, hi) = self.ci();
        write!(
            f,
            "{:.1}% (95% CI {:.1}-{:.1}%, {}/{})",
            self.rate() * 100.0,
            lo * 100.0,
            hi * 100.0,
            self.correct,
            self.total
        )
    }
}

/// In reports: `{"correct", "total", "accuracy", "accuracy_ci": [lo, hi]}`.
impl Serialize for Accuracy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Accuracy", 4)?;
        st.serialize_field("correct", &self.correct)?;
        st.serialize_field("total", &self.total)?;
        st.serialize_field("accuracy", &self.rate())?;
        st.serialize_field("accuracy_ci", &self.ci())?;
        st.end()
    }
}

/// Two runs compared question by question on the questions both answered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairedTest {
    /// Questions both runs have.
    pub shared: usize,
    /// Right in A, wrong in B.
    pub b: usize,
    /// Wrong in A, right in B.
    pub c: usize,
    /// Exact McNemar p-value.
    pub p: f64,
}

impl PairedTest {
    /// From the (A right, B right) outcome of each shared question.
    pub fn of(outcomes: impl IntoIterator<Item = (bool, bool)>) -> PairedTest {
        let (mut shared, mut b, mut c) = (0, 0, 0);
        for (a_right, b_right) in outcomes {
            shared += 1;
            match (a_right, b_right) {
                (true, false) => b += 1,
                (false, true) => c += 1,
                _ => {}
            }
        }
        PairedTest {
            shared,
            b,
            c,
            p: mcnemar_exact(b, c),
        }
    }

    /// The plain reading at [`ALPHA`]: which run is better, or that these questions cannot
    /// tell them apart.
    pub fn verdict(&self) -> String {
        let p = format_p(self.p);
        if self.p < ALPHA && self.c > self.b {
            format!("B is better than A ({p}; b = {}, c = {})", self.b, self.c)
        } else if self.p < ALPHA && self.b > self.c {
            format!("B is worse than A ({p}; b = {}, c = {})", self.b, self.c)
        } else {
            format!(
                "A and B are not distinguishable on these {} questions ({p}; b = {}, c = {})",
                self.shared, self.b, self.c
            )
        }
    }
}

/// `p = 0.013`, or `p < 0.001` where three decimals would read as zero.
pub fn format_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: (f64, f64), want: (f64, f64)) {
        assert!(
            (got.0 - want.0).abs() < 1e-3 && (got.1 - want.1).abs() < 1e-3,
            "{got:?} != {want:?}"
        );
    }

    #[test]
    fn wilson_matches_published_intervals() {
        close(wilson(0, 10), (0.0, 0.2775));
        close(wilson(7, 15), (0.2482, 0.6993));
        close(wilson(50, 100), (0.4038, 0.5962));
        close(wilson(10, 10), (0.7225, 1.0));
        close(wilson(0, 0), (0.0, 1.0));
    }

    #[test]
    fn mcnemar_exact_matches_the_binomial_test() {
        assert!((mcnemar_exact(1, 6) - 0.125).abs() < 1e-9);
        assert!((mcnemar_exact(6, 1) - 0.125).abs() < 1e-9);
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-9);
        assert!((mcnemar_exact(2, 12) - 0.012939).abs() < 1e-5);
        assert_eq!(mcnemar_exact(4, 4), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
    }

    #[test]
    fn mcnemar_exact_is_stable_for_many_discordant_pairs() {
        // 2^-2000 underflows an f64; the log-space sum must not.
        let p = mcnemar_exact(1000, 1000);
        assert_eq!(p, 1.0);
        let p = mcnemar_exact(900, 1100);
        assert!(p > 0.0 && p < 1e-5, "{p}");
    }

    #[test]
    fn accuracy_reads_with_its_interval() {
        assert_eq!(
            Accuracy::new(7, 15).to_string(),
            "46.7% (95% CI 24.8-69.9%, 7/15)"
        );
        let json = serde_json::to_value(Accuracy::new(7, 15)).unwrap();
        assert_eq!(json["correct"], 7);
        assert!((json["accuracy_ci"][0].as_f64().unwrap() - 0.2482).abs() < 1e-3);
    }

    #[test]
    fn paired_verdicts_say_which_run_is_better() {
        let mut outcomes = vec![(false, true); 12];
        outcomes.extend([(true, false); 2]);
        outcomes.extend([(true, true); 6]);
        let t = PairedTest::of(outcomes.clone());
        assert_eq!((t.shared, t.b, t.c), (20, 2, 12));
        assert_eq!(t.verdict(), "B is better than A (p = 0.013; b = 2, c = 12)");
        let swapped = PairedTest::of(outcomes.iter().map(|&(a, b)| (b, a)));
        assert!(
            swapped
                .verdict()
                .starts_with("B is worse than A (p = 0.013")
        );
        let even = PairedTest::of([(true, false), (false, true), (true, true)]);
        assert_eq!(
            even.verdict(),
            "A and B are not distinguishable on these 3 questions (p = 1.000; b = 1, c = 1)"
        );
    }
}
