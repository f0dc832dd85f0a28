//! The part of the rows a declaration falls in: its split by time in a training run, or what it
//! is in a run that only scores. One byte a row, where its name would take sixteen (ten million
//! declarations hold it twice while they are scored).

/// A row's part: the name written in `fraud_scores.split`, and the period whose rows the
/// inspection lists order together ([`crate::score`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// Labelled, on or before the training end day.
    Train,
    /// Labelled, after the training end day and on or before the validation end day.
    Valid,
    /// Labelled, after the validation end day.
    Test,
    /// Not inspected.
    Unlabelled,
    /// Scored by a kept model and already labelled.
    Live,
    /// Scored with a saved model ([`crate::score_with_model`]).
    Scored,
    /// The new rows of a carried-state run, as one period.
    Night,
}

impl Part {
    /// The name written in `fraud_scores.split`.
    pub fn name(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Valid => "valid",
            Part::Test => "test",
            Part::Unlabelled => "unlabelled",
            Part::Live => "live",
            Part::Scored => "scored",
            Part::Night => "night",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_one_byte_and_named_as_written() {
        assert_eq!(std::mem::size_of::<Part>(), 1);
        let all = [Part::Train, Part::Valid, Part::Test, Part::Unlabelled, Part::Live, Part::Scored, Part::Night];
        let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
        assert_eq!(names, ["train", "valid", "test", "unlabelled", "live", "scored", "night"]);
    }
}
