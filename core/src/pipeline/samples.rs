//! Several answers per eval question (`lode eval --samples K`): the first sample's accuracy,
//! the accuracy of the majority answer, and pass@k, each a count with its interval. The run
//! stored is the first sample's; the others are judged here and reported beside it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::pipeline::eval::{EvalOptions, ItemResult, evaluate_items};
use crate::pipeline::model_eval::{ModelEval, Prediction};
use crate::pipeline::stats::Accuracy;
use crate::project::Project;
use crate::sql::compare::Profile;

/// The scores of K samples per question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleScores {
    /// Samples per question.
    pub k: usize,
    /// Sample 1 alone: the run's own accuracy.
    pub single: Accuracy,
    /// The most common answer of each question (by result; by SQL where it did not run;
    /// ties to the earliest sample).
    pub majority: Accuracy,
    /// Questions with at least one right sample: the unbiased pass@k with n = k.
    pub pass_at_k: Accuracy,
    /// The share of right samples, averaged over questions: pass@1 estimated from k draws.
    pub pass_at_1: f64,
}

/// One sample's answer to a question: what it is grouped by, and whether it was right.
#[derive(Debug, Clone, PartialEq)]
pub struct Vote {
    pub answer: String,
    pub correct: bool,
}

impl Vote {
    /// Answers agree when their results do (whatever the SQL); answers that did not run
    /// agree when their SQL does.
    pub fn of(prediction: &Prediction, result: &ItemResult) -> Vote {
        let answer = match (&result.pred_fingerprint, &prediction.sql) {
            (Some(f), _) => format!("result {f}"),
            (None, Ok(sql)) => format!("sql {}", sql.trim()),
            (None, Err(_)) => "no prediction".to_string(),
        };
        Vote {
            answer,
            correct: result.verdict.correct,
        }
    }
}

/// Whether the most common answer among `votes` is right; a tie goes to the answer given
/// first.
pub fn majority_correct(votes: &[Vote]) -> bool {
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (i, v) in votes.iter().enumerate() {
        counts.entry(&v.answer).or_insert((0, i)).0 += 1;
    }
    counts
        .values()
        .max_by(|(n1, first1), (n2, first2)| n1.cmp(n2).then(first2.cmp(first1)))
        .is_some_and(|&(_, first)| votes[first].correct)
}

/// Judges samples 2..K (`rest`, each one prediction per eval question) and scores all K with
/// sample 1, the stored run `first`.
pub fn score(
    project: &Project,
    first: &ModelEval,
    rest: &[Vec<Prediction>],
    profile: &Profile,
    options: &EvalOptions,
) -> SampleScores {
    let mut databases = BTreeMap::new();
    databases.insert("project".to_string(), Arc::clone(&project.db));
    // Fingerprints come with previews; one row of preview is enough.
    let options = EvalOptions {
        preview_rows: 1,
        ..options.clone()
    };
    let first_predictions: Vec<Prediction> = first
        .cases
        .iter()
        .map(|c| Prediction {
            sql: c
                .pred_sql
                .clone()
                .ok_or_else(|| "no prediction".to_string()),
            raw: None,
        })
        .collect();
    let mut votes: Vec<Vec<Vote>> = first
        .cases
        .iter()
        .zip(&first_predictions)
        .map(|(c, p)| vec![Vote::of(p, &c.result)])
        .collect();
    for predictions in rest {
        let items = crate::pipeline::model_eval::eval_items(project, predictions);
        for r in evaluate_items(&items, &databases, profile, &options, &|_| {}) {
            if let Some(v) = votes.get_mut(r.index) {
                v.push(Vote::of(&predictions[r.index], &r));
            }
        }
    }
    tally(&votes)
}

/// The scores of each question's votes, sample 1 first.
pub fn tally(votes: &[Vec<Vote>]) -> SampleScores {
    let total = votes.len();
    let k = votes.iter().map(Vec::len).max().unwrap_or(0);
    let count = |f: &dyn Fn(&[Vote]) -> bool| votes.iter().filter(|v| f(v)).count();
    let pass_at_1 = if total == 0 {
        0.0
    } else {
        votes
            .iter()
            .map(|v| v.iter().filter(|x| x.correct).count() as f64 / v.len().max(1) as f64)
            .sum::<f64>()
            / total as f64
    };
    SampleScores {
        k,
        single: Accuracy::new(count(&|v| v.first().is_some_and(|x| x.correct)), total),
        majority: Accuracy::new(count(&|v| majority_correct(v)), total),
        pass_at_k: Accuracy::new(count(&|v| v.iter().any(|x| x.correct)), total),
        pass_at_1,
    }
}

impl SampleScores {
    /// The three scores, labelled, one a line.
    pub fn describe(&self) -> String {
        let k = self.k;
        let mut s = format!("{k} samples per question:\n");
        for (label, score) in [
            (
                "single sample (sample 1):".to_string(),
                self.single.to_string(),
            ),
            (format!("majority vote of {k}:"), self.majority.to_string()),
            (
                format!("pass@{k} (any sample right):"),
                self.pass_at_k.to_string(),
            ),
            (
                "pass@1 (mean over samples):".to_string(),
                format!("{:.1}%", self.pass_at_1 * 100.0),
            ),
        ] {
            s.push_str(&format!("  {label:<28}{score}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(answer: &str, correct: bool) -> Vote {
        Vote {
            answer: answer.into(),
            correct,
        }
    }

    #[test]
    fn the_most_common_answer_wins() {
        let votes = [vote("a", false), vote("b", true), vote("b", true)];
        assert!(majority_correct(&votes));
        let votes = [vote("a", true), vote("b", false), vote("b", false)];
        assert!(!majority_correct(&votes));
    }

    #[test]
    fn a_tie_goes_to_the_answer_given_first() {
        let votes = [
            vote("b", true),
            vote("a", false),
            vote("a", false),
            vote("b", true),
        ];
        assert!(majority_correct(&votes));
        let votes = [vote("a", false), vote("b", true)];
        assert!(!majority_correct(&votes));
    }

    #[test]
    fn tally_separates_single_majority_and_pass_at_k() {
        let votes = vec![
            // right first, then wrong twice: single yes, majority no, pass yes
            vec![vote("r", true), vote("w", false), vote("w", false)],
            // wrong first, right twice
            vec![vote("w", false), vote("r", true), vote("r", true)],
            // never right
            vec![vote("w", false), vote("x", false), vote("w", false)],
        ];
        let s = tally(&votes);
        assert_eq!(s.k, 3);
        assert_eq!(s.single, Accuracy::new(1, 3));
        assert_eq!(s.majority, Accuracy::new(1, 3));
        assert_eq!(s.pass_at_k, Accuracy::new(2, 3));
        assert!((s.pass_at_1 - 1.0 / 3.0).abs() < 1e-9);
    }
}
