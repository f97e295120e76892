using System.CommandLine;
using Pip.Cli.Commands;
using Pip.Cli.Infrastructure;

namespace Pip.Cli;

/// <summary>
/// The <c>pip-prune</c> command line: <see cref="BuildRootCommand"/> makes the command tree, <see cref="RunAsync"/>
/// parses and runs it. Both take a <see cref="CliContext"/>, so the tool can be run in-process with captured output.
/// </summary>
/// <remarks>
/// Each command lives in its own file under <c>Commands/</c> and is registered here. Results go to
/// <see cref="CliContext.Out"/> (a table, or JSON with <c>--json</c>), logs and errors to standard error. Exit codes
/// are those of <see cref="ExitCodes"/>.
/// <para>To add a command: write <c>Commands/NameCommand.cs</c> with <c>static Command Create(CliContext)</c> that
/// builds its options (shared ones from <c>CommonOptions</c>: --model, --out, --overwrite, --dtype, --device, --json;
/// --model is optional: resolve it with <c>ModelLoading.ModelFolderOrDefault</c>, which falls back to the bundled demo model)
/// and sets its body with <c>CommandRunner.SetBody</c> (exit codes, error messages, logging, cancellation); load
/// models with <c>ModelLoading.Load</c>, check output folders with <c>ModelLoading.CheckOutputFolder</c>, write results
/// with <c>ResultWriter</c>; pass long work's progress through <c>run.WithBars(logger, map)</c> (progress bars on a
/// terminal); then register it in <see cref="BuildRootCommand"/>. Every option is then also readable from a
/// <c>--settings</c> file, and a command with an <c>--out</c> folder saves its effective settings there (<c>SettingsFile</c>).</para>
/// </remarks>
public static class PipCli
{
    /// <summary>Builds the root command with every subcommand.</summary>
    /// <param name="context">Where output goes; null for the console.</param>
    /// <returns>The root command.</returns>
    public static RootCommand BuildRootCommand(CliContext? context = null)
    {
        context ??= new CliContext();
        var root = new RootCommand("pip-prune: create, inspect, evaluate, prune and recover Llama-family and OPT checkpoints (Hugging Face folders) with Pip.")
        {
            GlobalOptions.CreateLogLevel(),
            SettingsFile.CreateOption(),
        };
        root.Subcommands.Add(CreateRandomCommand.Create(context));
        root.Subcommands.Add(ConvertCommand.Create(context));
        root.Subcommands.Add(InspectCommand.Create(context));
        root.Subcommands.Add(EvalCommand.Create(context));
        root.Subcommands.Add(GenerateCommand.Create(context));
        root.Subcommands.Add(PruneCommand.Create(context));
        root.Subcommands.Add(CompareCommand.Create(context));
        root.Subcommands.Add(RecoverCommand.Create(context));
        root.Subcommands.Add(DistillCommand.Create(context));
        root.Subcommands.Add(IdeaCommand.Create(context));
        root.Subcommands.Add(SearchCommand.Create(context));
        return root;
    }

    /// <summary>
    /// Parses and runs a command line. Parse errors (unknown options, bad values, missing required options, a bad
    /// <c>--settings</c> file) print the errors and give <see cref="ExitCodes.BadInput"/>; Ctrl-C cancels the running command.
    /// </summary>
    /// <param name="args">The arguments, without the program name.</param>
    /// <param name="context">Where output goes; null for the console.</param>
    /// <param name="cancellationToken">Cancels the command (besides Ctrl-C).</param>
    /// <returns>The exit code.</returns>
    public static async Task<int> RunAsync(string[] args, CliContext? context = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        context ??= new CliContext();
        // Listening from the start, so that a signal at any phase (parsing, loading, tokenizing, scoring, saving) ends the same way.
        using var signals = new TerminationSignals(cancellationToken);
        return await RunWithSignalsAsync(args, context, signals).ConfigureAwait(false);
    }

    /// <summary>Parses and runs a command line, cancelled by <paramref name="signals"/>.</summary>
    internal static async Task<int> RunWithSignalsAsync(string[] args, CliContext context, TerminationSignals signals)
    {
        var cancellationToken = signals.Token;
        try
        {
            var root = BuildRootCommand(context);
            var parseResult = root.Parse(args);
            // Values of a --settings file are added for the options the command line does not give, then parsed as if given.
            var settings = SettingsFile.Merge(parseResult, args);
            if (settings is not null) parseResult = root.Parse(settings.Args);
            if (parseResult.Errors.Count > 0)
            {
                foreach (var error in parseResult.Errors) await context.Error.WriteLineAsync($"pip-prune: {error.Message}").ConfigureAwait(false);
                if (settings is { Added.Count: > 0 })
                    await context.Error.WriteLineAsync($"pip-prune: settings file '{settings.File}' gave: {string.Join(' ', settings.Added)}").ConfigureAwait(false);
                var command = parseResult.CommandResult.Command;
                var name = command == root ? "pip-prune" : $"pip-prune {command.Name}";
                await context.Error.WriteLineAsync($"Run '{name} --help' for usage.").ConfigureAwait(false);
                return ExitCodes.BadInput;
            }

            cancellationToken.ThrowIfCancellationRequested();
            var configuration = new InvocationConfiguration
            {
                Output = context.Out,
                Error = context.Error,
                // Signals are handled by TerminationSignals: System.CommandLine's handler crashes on a second signal.
                ProcessTerminationTimeout = null,
            };
            var invocation = parseResult.InvokeAsync(configuration, cancellationToken);
            // A command that does not stop within the grace period after a signal (a step that cannot be interrupted) is
            // abandoned with the same message and exit code; the process then ends.
            using var abandon = new CancellationTokenSource();
            var grace = WaitForGraceAsync(cancellationToken, context.CancellationGracePeriod, abandon.Token);
            var first = await Task.WhenAny(invocation, grace).ConfigureAwait(false);
            await abandon.CancelAsync().ConfigureAwait(false);
            if (first == invocation) return await invocation.ConfigureAwait(false);
            await context.Error.WriteLineAsync("pip-prune: cancelled.").ConfigureAwait(false);
            return ExitCodes.Cancelled;
        }
        catch (Exception e)
        {
            // Commands handle their own errors; this catches what escapes parsing or the invocation machinery.
            var (code, message) = CommandRunner.Classify(e, cancellationToken);
            await context.Error.WriteLineAsync($"pip-prune: {message}").ConfigureAwait(false);
            return code;
        }
    }

    /// <summary>Completes <paramref name="grace"/> after <paramref name="cancellation"/> is cancelled; never otherwise.</summary>
    private static async Task WaitForGraceAsync(CancellationToken cancellation, TimeSpan grace, CancellationToken abandon)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, cancellation).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
        }
        await Task.Delay(grace, abandon).ConfigureAwait(false);
    }
}
