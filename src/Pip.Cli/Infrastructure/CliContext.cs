using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Pip.Cli;

/// <summary>
/// Where <c>pip-prune</c> writes: results to <see cref="Out"/>, error messages to <see cref="Error"/>, logs through the
/// logger factory (by default the console, on standard error). Tests inject writers to capture the output.
/// </summary>
public sealed class CliContext
{
    /// <summary>Receives the results (tables, JSON, generated text); standard output by default.</summary>
    public TextWriter Out { get; init; } = Console.Out;

    /// <summary>Receives error messages and parse errors; standard error by default.</summary>
    public TextWriter Error { get; init; } = Console.Error;

    /// <summary>
    /// Makes the logger factory of one command run from the minimum level asked for (<c>--log-level</c>); the run
    /// disposes it. Null for the default: single-line console logs on standard error.
    /// </summary>
    public Func<LogLevel, ILoggerFactory>? LoggerFactory { get; init; }

    /// <summary>
    /// The model folder commands use when <c>--model</c> is not given: by default <c>models/pip-demo</c> next to the
    /// tool (copied there at build time when the repository has it). When it does not exist, <c>--model</c> is required.
    /// </summary>
    public string DefaultModelFolder { get; init; } = Path.Combine(AppContext.BaseDirectory, "models", "pip-demo");

    /// <summary>
    /// The calibration text <c>prune</c> uses when <c>--calibration</c> is not given: by default
    /// <c>data/calibration/brown-sample.txt</c> next to the tool.
    /// </summary>
    public string DefaultCalibrationFile { get; init; } = Path.Combine(AppContext.BaseDirectory, "data", "calibration", "brown-sample.txt");

    /// <summary>
    /// How long a command may take to stop after Ctrl-C / SIGTERM (or the run's cancellation token) before <c>pip-prune</c>
    /// gives up waiting for it and ends with the same "cancelled." message and <see cref="ExitCodes.Cancelled"/>.
    /// </summary>
    public TimeSpan CancellationGracePeriod { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Whether <see cref="Out"/> is an interactive terminal (progress bars and drawn tables instead of plain text): null
    /// (the default) detects it — standard output not redirected; true forces it (with ANSI escapes); false turns it off.
    /// </summary>
    public bool? Interactive { get; init; }

    internal bool IsInteractive => Interactive ?? Pip.Cli.Infrastructure.Terminal.IsInteractiveConsole(Out);

    internal ILoggerFactory CreateLoggerFactory(LogLevel level) =>
        LoggerFactory?.Invoke(level) ?? Microsoft.Extensions.Logging.LoggerFactory.Create(builder => builder
            .SetMinimumLevel(level)
            .AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss ";
            })
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
}
