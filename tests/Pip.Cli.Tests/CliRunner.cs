using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Pip.Cli.Tests;

/// <summary>The outcome of one in-process run of pip-prune.</summary>
internal sealed record CliRun(int ExitCode, string Out, string Error);

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
