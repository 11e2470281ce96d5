//! The progress bar of `tiffin prove` and `tiffin session submit --wait`: the stage, its
//! count (segments proven of total, joins done of total), elapsed time and an ETA for the
//! stage. Drawn on stderr only when it is a terminal, so logs and pipes stay clean.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tiffin_workflow::Stage;

/// A bar following one job's stages.
pub struct StageBar {
    bar: ProgressBar,
    stage: Option<&'static str>,
}

impl StageBar {
    /// A bar on stderr (hidden when stderr is not a terminal).
    pub fn new() -> Self {
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new(1)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(Self::style(false));
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar, stage: None }
    }

    fn style(counted: bool) -> ProgressStyle {
        let template = if counted {
            "{spinner} [{elapsed_precise}] {msg:<14} [{bar:30}] {pos}/{len} · ETA {eta}"
        } else {
            "{spinner} [{elapsed_precise}] {msg}"
        };
        ProgressStyle::with_template(template).expect("a valid template").progress_chars("=> ")
    }

    /// Shows `stage`; a new stage restarts the ETA.
    pub fn show(&mut self, stage: Stage) {
        let (name, count) = stage.parts();
        if self.stage != Some(name) {
            self.stage = Some(name);
            self.bar.set_style(Self::style(count.is_some()));
            self.bar.reset_eta();
        }
        if let Some((done, of)) = count {
            self.bar.set_length(of.max(1) as u64);
            self.bar.set_position(done.max(0) as u64);
        }
        self.bar.set_message(name);
    }

    /// Shows a `state` string from the API (unknown ones as they are).
    pub fn show_state(&mut self, state: &str) {
        match Stage::parse(state) {
            Some(stage) => self.show(stage),
            None => self.bar.set_message(state.to_string()),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
