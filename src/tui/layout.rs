//! Where each control goes on screen: the one layout that both the drawing and the mouse
//! hit-testing use.

use ratatui::layout::{Position, Rect};

use super::app::{App, DAEMONS, Item, Screen};
pub(super) use super::frame::{clip, inner, log_pane, ops};

/// Width of the label column.
pub(super) const LABEL: u16 = 12;
/// Rows the Device list shows at most.
pub(super) const DEVICE_ROWS: u16 = 4;

/// One control's place on screen; `option` picks a daemon or device within a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spot {
    /// The control.
    pub item: Item,
    /// Which option of a list (daemon, device), if this spot is one.
    pub option: Option<usize>,
    /// Where it is drawn.
    pub rect: Rect,
}

/// Where every control of the current screen goes in `area`.
pub fn spots(area: Rect, app: &App) -> Vec<Spot> {
    let inner = inner(area);
    match app.screen {
        Screen::Settings => settings_spots(inner, app),
        Screen::Operations => operation_spots(inner),
    }
}

/// The control (and list option) at a screen position.
pub fn hit(area: Rect, app: &App, column: u16, row: u16) -> Option<Spot> {
    let at = Position::new(column, row);
    spots(area, app)
        .into_iter()
        .filter(|s| s.rect.contains(at))
        // A list option is more precise than the list around it.
        .max_by_key(|s| s.option.is_some())
}

pub(super) fn field_x(inner: Rect) -> u16 {
    inner.x + 1 + LABEL
}

pub(super) fn device_rows(app: &App) -> u16 {
    (app.form.devices.len() as u16).clamp(1, DEVICE_ROWS)
}

pub(super) fn directory_width(inner: Rect) -> u16 {
    inner.width.saturating_sub(LABEL + 1 + 22).clamp(10, 48)
}

/// Rows of the settings screen, from the top of the inner area.
pub(super) mod row {
    pub const DAEMON: u16 = 1;
    pub const DEBUG: u16 = 2;
    pub const UPLOAD: u16 = 3;
    pub const PORT: u16 = 4;
    pub const DEVICE: u16 = 5;
}

fn settings_spots(inner: Rect, app: &App) -> Vec<Spot> {
    let x = field_x(inner);
    let at = |row: u16| inner.y + row;
    let mut spots = Vec::new();
    let mut push = |item, option, rect: Rect| {
        if !rect.is_empty() {
            spots.push(Spot { item, option, rect });
        }
    };

    let mut ox = x;
    for (i, kind) in DAEMONS.iter().enumerate() {
        let width = kind.program().len() as u16 + 4;
        push(
            Item::Daemon,
            Some(i),
            clip(inner, ox, at(row::DAEMON), width, 1),
        );
        ox += width + 2;
    }
    push(Item::Debug, None, clip(inner, x, at(row::DEBUG), 24, 1));
    push(Item::Upload, None, clip(inner, x, at(row::UPLOAD), 24, 1));
    push(Item::Port, None, clip(inner, x, at(row::PORT), 8, 1));
    let rows = device_rows(app);
    push(
        Item::Device,
        None,
        clip(inner, x, at(row::DEVICE), 40, rows),
    );
    let offset = device_offset(app, rows);
    for r in 0..rows {
        let index = offset + usize::from(r);
        if index < app.form.devices.len() {
            push(
                Item::Device,
                Some(index),
                clip(inner, x, at(row::DEVICE) + r, 40, 1),
            );
        }
    }
    let listen = row::DEVICE + rows;
    push(Item::Listen, None, clip(inner, x, at(listen), 24, 1));
    push(
        Item::Directory,
        None,
        clip(inner, x, at(listen + 1), directory_width(inner), 1),
    );
    let buttons = at(listen + 3);
    push(Item::Next, None, clip(inner, x, buttons, 8, 1));
    push(Item::Cancel, None, clip(inner, x + 10, buttons, 10, 1));
    spots
}

/// The first device shown, so that the chosen one is always in view.
pub(super) fn device_offset(app: &App, rows: u16) -> usize {
    app.form
        .device
        .saturating_sub(usize::from(rows).saturating_sub(1))
}

/// Button labels on the operations screen, in order.
pub(super) const OPERATION_BUTTONS: [(Item, &str); 5] = [
    (Item::Start, "Start"),
    (Item::Stop, "Stop"),
    (Item::Status, "Status"),
    (Item::Back, "Back"),
    (Item::Exit, "Exit"),
];

fn operation_spots(inner: Rect) -> Vec<Spot> {
    let mut spots = Vec::new();
    let mut x = field_x(inner);
    for (item, label) in OPERATION_BUTTONS {
        let width = label.len() as u16 + 4;
        let rect = clip(inner, x, inner.y + ops::BUTTONS, width, 1);
        if !rect.is_empty() {
            spots.push(Spot {
                item,
                option: None,
                rect,
            });
        }
        x += width + 2;
    }
    let rect = log_pane(inner);
    if !rect.is_empty() {
        spots.push(Spot {
            item: Item::Log,
            option: None,
            rect,
        });
    }
    spots
}
