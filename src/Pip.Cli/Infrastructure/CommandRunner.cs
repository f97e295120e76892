using System.CommandLine;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Pip.Checkpoints;

namespace Pip.Cli.Infrastructure;

/// <summary>What a command's body gets: its parse result, cancellation, output writer and logger.</summary>
internal sealed class CommandInvocation(ParseResult parseResult, CliContext context, ILoggerFactory loggerFactory, ILogger logger, CancellationToken cancellationToken, Terminal? terminal = null)
{
    /// <summary>The parsed command line.</summary>
    public ParseResult ParseResult { get; } = parseResult;

    /// <summary>Where results go (standard output; held back while a terminal run shows progress bars).</summary>
    public TextWriter Out => Terminal?.Output ?? context.Out;

    /// <summary>The interactive terminal (progress bars, tables), or null when the output is not a terminal or is JSON.</summary>
    public Terminal? Terminal { get; } = terminal;

    /// <summary>The logger factory of this run (for library types that take one).</summary>
    public ILoggerFactory LoggerFactory { get; } = loggerFactory;

    /// <summary>The command's logger (standard error).</summary>
    public ILogger Logger { get; } = logger;

    /// <summary>Signalled on Ctrl-C / SIGTERM.</summary>
    public CancellationToken CancellationToken { get; } = cancellationToken;

    /// <summary>The value of an option.</summary>
    public T? Get<T>(Option<T> option) => ParseResult.GetValue(option);

    /// <summary>The value of an option that is required or has a default.</summary>
    public T Require<T>(Option<T> option) => ParseResult.GetRequiredValue(option);

    /// <summary>Progress that goes to <paramref name="inner"/> and, in a terminal run, to the progress bars <paramref name="bar"/> maps it to.</summary>
    public IProgress<T> WithBars<T>(IProgress<T> inner, Func<T, (string Key, string Description, double Completed, double Total)?> bar) =>
        new TerminalProgress<T>(inner, Terminal, value => bar(value) is { } b ? [b] : []);

    /// <summary>Progress that goes to <paramref name="inner"/> and, in a terminal run, to the progress bars <paramref name="bars"/> maps it to.</summary>
    public IProgress<T> WithBars<T>(IProgress<T> inner, Func<T, IEnumerable<(string Key, string Description, double Completed, double Total)>> bars) =>
        new TerminalProgress<T>(inner, Terminal, bars);
}

/// <summary>
/// Runs command bodies with the shared policy: one logger factory per run, exceptions mapped to exit codes and
/// reported as one line (no stack trace unless logging at Debug), cancellation reported as such; progress bars and
/// tables when standard output is a terminal (<see cref="Terminal"/>); after a successful run that wrote an
/// <c>--out</c> folder, its effective settings (<see cref="SettingsFile"/>).
/// </summary>
internal static class CommandRunner
{
    /// <summary>Sets <paramref name="command"/>'s action to run <paramref name="body"/> under the shared policy.</summary>
    public static void SetBody(Command command, CliContext context, Func<CommandInvocation, Task<int>> body) =>
        command.SetAction((parseResult, cancellationToken) => RunAsync(command.Name, parseResult, context, body, cancellationToken));

    /// <summary>Sets a synchronous body (model work is synchronous; it checks the token itself).</summary>
    public static void SetBody(Command command, CliContext context, Func<CommandInvocation, int> body) =>
        SetBody(command, context, invocation => Task.FromResult(body(invocation)));

    private static async Task<int> RunAsync(string name, ParseResult parseResult, CliContext context, Func<CommandInvocation, Task<int>> body, CancellationToken cancellationToken)
    {
        var terminal = context.IsInteractive && !WantsJson(parseResult) ? new Terminal(context.Out, forceAnsi: context.Interactive == true) : null;
        var level = GlobalOptions.GetLogLevel(parseResult);
        // On a terminal the progress bars replace the progress logs, whose lines would tear the live display: unless
        // --log-level is given, only warnings and errors are logged there.
        if (terminal is not null && parseResult.GetResult(GlobalOptions.LogLevelName) is not System.CommandLine.Parsing.OptionResult { Implicit: false } && level < LogLevel.Warning) level = LogLevel.Warning;
        using var loggerFactory = context.CreateLoggerFactory(level);
        var logger = loggerFactory.CreateLogger("pip-prune." + name);
        var clock = Stopwatch.StartNew();
        try
        {
            var invocation = new CommandInvocation(parseResult, context, loggerFactory, logger, cancellationToken, terminal);
            int code;
            try
            {
                // Model work is synchronous and CPU-bound: run it off the caller's thread so that Ctrl-C handling stays responsive.
                code = await Task.Run(() => body(invocation), CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                if (terminal is not null) await terminal.CompleteAsync().ConfigureAwait(false);
            }

            if (code == ExitCodes.Success) SettingsFile.WriteEffective(parseResult, logger);
            logger.LogDebug("{Command} finished in {Seconds:F1} s with exit code {Code}.", name, clock.Elapsed.TotalSeconds, code);
            return code;
        }
        catch (Exception e)
        {
            var (code, message) = Classify(e, cancellationToken);
            if (code == ExitCodes.RuntimeFailure) logger.LogDebug(e, "{Command} failed.", name);
            await context.Error.WriteLineAsync($"pip-prune {name}: {message}").ConfigureAwait(false);
            await context.Error.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            return code;
        }
    }

    /// <summary>Whether the command has a <c>--json</c> option that is on.</summary>
    private static bool WantsJson(ParseResult parseResult) =>
        parseResult.CommandResult.Command.Options.FirstOrDefault(o => o.Name == "--json") is Option<bool> json && parseResult.GetValue(json);

    /// <summary>Maps an exception to an exit code and the message to print.</summary>
    internal static (int Code, string Message) Classify(Exception e, CancellationToken cancellationToken)
    {
        if (e is AggregateException { InnerExceptions.Count: 1 } aggregate) e = aggregate.InnerExceptions[0];
        return e switch
        {
            OperationCanceledException when cancellationToken.IsCancellationRequested => (ExitCodes.Cancelled, "cancelled."),
            CliInputException or CheckpointFormatException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException
                => (ExitCodes.BadInput, "error: " + e.Message),
            _ => (ExitCodes.RuntimeFailure, $"error: {e.Message} ({e.GetType().Name}; run with --log-level Debug for the stack trace)"),
        };
    }
}
