using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Pip.Cli.Tests;

/// <summary>The outcome of one in-process run of pip-prune (with the log messages when they were captured).</summary>
internal sealed record CliRun(int ExitCode, string Out, string Error, IReadOnlyList<string>? Logs = null);

/// <summary>How to set up an in-process run: bundled defaults and a log callback.</summary>
internal sealed record CliSetup
{
    public string? DefaultModelFolder { get; init; }

    public string? DefaultCalibrationFile { get; init; }

    /// <summary>Forces the terminal mode of the output (null: detect, which is off for captured output).</summary>
    public bool? Interactive { get; init; }

    /// <summary>Called synchronously with each log message (category: message).</summary>
    public Action<string>? OnLog { get; init; }
}

/// <summary>Runs pip-prune in-process with captured output.</summary>
internal static class CliRunner
{
    public static async Task<CliRun> RunAsync(params string[] args) => await RunAsync(args, CancellationToken.None);

    public static async Task<CliRun> RunAsync(string[] args, CancellationToken cancellationToken)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext { Out = output, Error = error, LoggerFactory = _ => NullLoggerFactory.Instance };
        var code = await PipCli.RunAsync(args, context, cancellationToken);
        return new CliRun(code, output.ToString(), error.ToString());
    }

    /// <summary>Runs with bundled defaults replaced and every log message (Debug and above) captured.</summary>
    public static async Task<CliRun> RunAsync(CliSetup setup, string[] args, CancellationToken cancellationToken = default)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var logs = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var defaults = new CliContext();
        var context = new CliContext
        {
            Out = output,
            Error = error,
            LoggerFactory = level => LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new CapturingLoggerProvider(m =>
            {
                logs.Enqueue(m);
                setup.OnLog?.Invoke(m);
            }))),
            DefaultModelFolder = setup.DefaultModelFolder ?? defaults.DefaultModelFolder,
            DefaultCalibrationFile = setup.DefaultCalibrationFile ?? defaults.DefaultCalibrationFile,
            Interactive = setup.Interactive,
        };
        var code = await PipCli.RunAsync(args, context, cancellationToken);
        return new CliRun(code, output.ToString(), error.ToString(), [.. logs]);
    }

    private sealed class CapturingLoggerProvider(Action<string> sink) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new CapturingLogger(categoryName, sink);

        public void Dispose()
        {
        }
    }

    private sealed class CapturingLogger(string category, Action<string> sink) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            sink($"{category}: {formatter(state, exception)}");
    }
}

/// <summary>A temporary folder holding one tiny random model made by <c>create-random</c>, shared by a test class.</summary>
public sealed class TinyModelFixture : IAsyncLifetime
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), "pip-cli-tests-" + Guid.NewGuid().ToString("N"));

    public string ModelFolder => Path.Combine(Root, "tiny");

    public string TextFile => Path.Combine(Root, "text.txt");

    internal CliRun Created { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Root);
        var sentences = new[] { "The quick brown fox jumps over the lazy dog.", "Pruning removes layers that matter least.", "Perplexity measures surprise." };
        await File.WriteAllLinesAsync(TextFile, Enumerable.Range(0, 30).Select(i => sentences[i % sentences.Length]));
        Created = await CliRunner.RunAsync("create-random", "--out", ModelFolder, "--preset", "tiny", "--seed", "7", "--json");
    }

    public Task DisposeAsync()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
        return Task.CompletedTask;
    }
}

[CollectionDefinition(Name)]
public sealed class TinyModelCollection : ICollectionFixture<TinyModelFixture>
{
    public const string Name = "tiny model";
}
