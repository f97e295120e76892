using System.Text.Json;
using Pip.Checkpoints;

namespace Pip.Cli.Tests.Commands;

public sealed class ConvertCommandTests : IDisposable
{
    private const string KnownText = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high";

    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-convert-tests-" + Guid.NewGuid().ToString("N"));

    public ConvertCommandTests() => Directory.CreateDirectory(_root);

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Pip.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Pip.sln not found above " + AppContext.BaseDirectory);
    }

    private static string Source(string file) => Path.Combine(RepoRoot(), "models", "stories260K", "source", file);

    [Theory]
    [InlineData("tok512.bin")]
    [InlineData("tok512.model")]
    public async Task Convert_Stories260K_WritesAFolderThatGeneratesTheKnownText(string tokenizer)
    {
        var output = Path.Combine(_root, "s260");

        var convert = await CliRunner.RunAsync("convert", "--from", "llama2c", Source("stories260K.bin"), "--tokenizer", Source(tokenizer), "--out", output, "--json");
        var generate = await CliRunner.RunAsync("generate", "--model", output, "--prompt", "Once upon a time", "--max-new-tokens", "56");

        convert.ExitCode.Should().Be(ExitCodes.Success, convert.Error);
        using var doc = JsonDocument.Parse(convert.Out);
        doc.RootElement.GetProperty("parameters").GetInt64().Should().Be(260_032);
        doc.RootElement.GetProperty("tokenizer_tokens").GetInt32().Should().Be(512);
        generate.ExitCode.Should().Be(ExitCodes.Success, generate.Error);
        generate.Out.Should().Be(KnownText + Environment.NewLine);
    }

    [Fact]
    public async Task Convert_TruncatedCheckpoint_ExitsWithBadInputNamingTheFileAndWritesNothing()
    {
        var bin = Path.Combine(_root, "cut.bin");
        File.WriteAllBytes(bin, File.ReadAllBytes(Source("stories260K.bin"))[..500_000]);
        var output = Path.Combine(_root, "out");

        var run = await CliRunner.RunAsync("convert", "--from", "llama2c", bin, "--tokenizer", Source("tok512.bin"), "--out", output);

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(bin).And.Contain("truncated").And.NotContain("   at ");
        Directory.Exists(output).Should().BeFalse();
    }

    [Fact]
    public async Task Convert_TokenizerOfAnotherModel_ExitsWithBadInputNamingTheTokenizer()
    {
        var tokenizer = Path.Combine(_root, "tok.bin");
        File.WriteAllBytes(tokenizer, File.ReadAllBytes(Source("tok512.bin"))[..3000]);

        var run = await CliRunner.RunAsync("convert", "--from", "llama2c", Source("stories260K.bin"), "--tokenizer", tokenizer, "--out", Path.Combine(_root, "out"));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(tokenizer).And.Contain("of 512");
    }

    [Fact]
    public async Task Convert_UnknownFormat_ExitsWithBadInput()
    {
        var run = await CliRunner.RunAsync("convert", "--from", "gguf", Source("stories260K.bin"), "--tokenizer", Source("tok512.bin"), "--out", Path.Combine(_root, "out"));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("gguf");
    }

    [Fact]
    public async Task Prune_BundledStories260K_RemovesOneLayer()
    {
        var output = Path.Combine(_root, "pruned");

        var run = await CliRunner.RunAsync("prune", "--model", Path.Combine(RepoRoot(), "models", "stories260K"), "--layers", "1", "--out", output, "--json");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        LlamaConfigSerializer.Load(Path.Combine(output, "config.json")).NumHiddenLayers.Should().Be(4);
        File.Exists(Path.Combine(output, "tokenizer.json")).Should().BeTrue();
    }

    [Fact]
    public async Task Prune_Llama2CBinAsModel_ExitsWithBadInputPointingToConvert()
    {
        var run = await CliRunner.RunAsync("prune", "--model", Source("stories260K.bin"), "--layers", "1", "--out", Path.Combine(_root, "out"));

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(Source("stories260K.bin")).And.Contain("convert --from llama2c");
    }
}
