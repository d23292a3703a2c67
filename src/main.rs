//! The `statuscope` command; its subcommands and flags are in `src/cli/`.

fn main() -> std::process::ExitCode {
    statuscope::cli::main()
}
