//! What `daemontui` prints on exit with DEBUG: the final settings as environment
//! assignments, to paste into a script or a Procfile.

use tui_input::Input;

use super::app::App;

impl App {
    /// The final settings as environment assignments, printed on exit with DEBUG.
    pub fn summary(&self) -> String {
        let target = self
            .target
            .clone()
            .unwrap_or_else(|| self.target_for_form());
        let mut out = format!("DAEMON={}\n", target.kind.program());
        let shown = target.shown();
        let or_text = |typed: String, text: &Input| {
            if typed.is_empty() {
                text.value().trim().to_string()
            } else {
                typed
            }
        };
        let port = or_text(shown.port, &self.form.port);
        let iface = or_text(shown.listen, &self.form.listen);
        out.push_str(&format!("PORT={port}\nIFACE={iface}\n"));
        out.push_str(&format!("DOCROOT={}\n", shown.directory));
        out.push_str(&format!("DEBUG={}\n", u8::from(shown.debug)));
        out.push_str(&format!("UPLOAD={}\n", u8::from(shown.upload)));
        if let Some(device) = &target.device {
            out.push_str(&format!("IDEV={device}\n"));
        }
        out.push_str(&format!("PID={}\n", target.pid_file.display()));
        out.push_str(&format!("LOG={}\n", target.log_file.display()));
        out
    }
}
