//! The frame every screen is drawn in: its border, and where the operations screen's
//! rows and log pane sit. Geometry only: the app's state (`app.rs`) asks it how many log
//! lines fit, and the layout of controls (`layout.rs`) builds on it.

use ratatui::layout::Rect;
use ratatui::widgets::{Block, Borders};

/// The area inside the frame's border.
pub(super) fn inner(area: Rect) -> Rect {
    Block::default().borders(Borders::ALL).inner(area)
}

/// A rectangle clipped to `inner`.
pub(super) fn clip(inner: Rect, x: u16, y: u16, width: u16, height: u16) -> Rect {
    Rect::new(x, y, width, height).intersection(inner)
}

/// Rows of the operations screen, from the top of the inner area.
pub(super) mod ops {
    pub const DAEMON: u16 = 0;
    pub const DIRECTORY: u16 = 1;
    pub const STATUS: u16 = 2;
    pub const BUTTONS: u16 = 4;
    pub const LAST: u16 = 5;
    pub const LOG: u16 = 6;
}

/// The log pane of the operations screen: the rest of `inner`, above the help line.
pub(super) fn log_pane(inner: Rect) -> Rect {
    let top = inner.y + ops::LOG;
    let height = inner.bottom().saturating_sub(1).saturating_sub(top);
    clip(inner, inner.x, top, inner.width, height)
}

/// Rows of text inside the log pane's border when the terminal is `area`.
pub(super) fn log_rows(area: Rect) -> usize {
    usize::from(log_pane(inner(area)).height.saturating_sub(2))
}
