//! The one place where an outcome becomes what the user sees: a one-line message on
//! stderr, `program: what went wrong`, and the exit code (0 done, 1 failed at run time,
//! 2 bad arguments or environment; the daemons' `status` adds the LSB codes 1, 3 and 4).

use std::error::Error as _;
use std::io::Write as _;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::error::Error;
use crate::settings::SettingsError;

/// Parses the command line as `program`, runs `run` on the arguments, and turns the
/// result into an exit code. Every binary's `main` is this one call.
pub fn main<A: CommandFactory + FromArgMatches>(
    program: &'static str,
    run: impl FnOnce(A) -> crate::Result<ExitCode>,
) -> ExitCode {
    let mut command = A::command().name(program).bin_name(program);
    // Added before the usage line is rendered, which builds the definition.
    command = command.arg(
        clap::Arg::new("generate")
            .long("generate")
            .value_name("KIND")
            .value_parser(GENERATED)
            .help("Print the man page or shell completions, then exit")
            .long_help(
                "Print the man page (man) or shell completions (complete-bash, \
                 complete-zsh, complete-fish, complete-powershell), then exit",
            )
            .exclusive(true),
    );
    // An error's usage line is the one `--help` shows: clap would otherwise mark the
    // arguments given (an empty PORT from a Procfile) as required (`serv <PORT>`).
    let line = command.render_usage().to_string();
    if let Some(line) = line.strip_prefix("Usage: ") {
        command = command.override_usage(line.trim().to_string());
    }
    // Asked before anything else is parsed: a binary whose subcommand is required
    // (`httpdaemon start`) answers it too.
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == "--generate") {
        return generate(program, command, args.next());
    }
    let parsed = command
        .try_get_matches()
        .and_then(|matches| A::from_arg_matches(&matches));
    match parsed {
        Ok(args) => match run(args) {
            Ok(code) => code,
            Err(e) => fail(program, &e),
        },
        Err(e) => usage(program, &e),
    }
}

/// What `--generate` prints.
const GENERATED: [&str; 5] = [
    "man",
    "complete-bash",
    "complete-zsh",
    "complete-fish",
    "complete-powershell",
];

/// Prints what `--generate KIND` asks for on stdout.
fn generate(
    program: &str,
    mut command: clap::Command,
    kind: Option<std::ffi::OsString>,
) -> ExitCode {
    use clap_complete::Shell;
    let mut out = std::io::stdout().lock();
    let shell = match kind.as_ref().and_then(|k| k.to_str()) {
        Some("man") => {
            // The man page is rendered from the finished definition (help and version
            // options added), as --help is.
            command.build();
            return match clap_mangen::Man::new(command).render(&mut out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(program, &Error::io("writing the man page", e)),
            };
        }
        Some("complete-bash") => Shell::Bash,
        Some("complete-zsh") => Shell::Zsh,
        Some("complete-fish") => Shell::Fish,
        Some("complete-powershell") => Shell::PowerShell,
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "{program}: --generate takes one of: {}",
                GENERATED.join(", ")
            );
            return ExitCode::from(2);
        }
    };
    clap_complete::generate(shell, &mut command, program, &mut out);
    ExitCode::SUCCESS
}

/// Prints `program: error` and gives the error's exit code.
pub fn fail(program: &str, error: &Error) -> ExitCode {
    // What the command printed before the failure comes first.
    let _ = std::io::stdout().flush();
    eprintln!("{program}: {error}");
    ExitCode::from(error.exit_code())
}

/// A bad value gets the same one line as the same bad value in the environment; other
/// usage mistakes get clap's message with its hint; `--help` and `--version` print and
/// exit 0.
fn usage(program: &str, error: &clap::Error) -> ExitCode {
    if let Some(bad) = error
        .source()
        .and_then(|s| s.downcast_ref::<SettingsError>())
    {
        eprintln!("{program}: {bad}");
        return ExitCode::from(2);
    }
    let _ = error.print();
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}
