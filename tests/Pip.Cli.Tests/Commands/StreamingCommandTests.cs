using System.Text.Json;
using Pip.Checkpoints;
using Pip.Torch;
using static TorchSharp.torch;

namespace Pip.Cli.Tests.Commands;

/// <summary><c>--stream</c> and <c>--memory-limit</c> on prune and eval: same results as in memory, clear errors.</summary>
public sealed class StreamingCommandTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-cli-stream-tests-" + Guid.NewGuid().ToString("N"));

    private string ModelFolder => Path.Combine(_root, "tiny");

    private static string Calibration => PruneFixture.BundledCalibration;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        var created = await CliRunner.RunAsync("create-random", "--out", ModelFolder, "--preset", "tiny", "--seed", "5", "--tokenizer-corpus", Calibration, "--json");
        if (created.ExitCode != 0) throw new InvalidOperationException("create-random failed: " + created.Error);
    }

    public Task DisposeAsync()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task Prune_StreamPipIterative_WritesSameModelAsInMemory()
    {
        string[] common = ["prune", "--model", ModelFolder, "--metric", "pip", "--ratio", "0.4", "--samples", "2", "--max-tokens", "24", "--sets", "2", "--rate", "0.2", "--dtype", "float32", "--json"];
        var memoryOut = Path.Combine(_root, "memory");
        var streamedOut = Path.Combine(_root, "streamed");
        var memory = await CliRunner.RunAsync([.. common, "--out", memoryOut]);
        var streamed = await CliRunner.RunAsync(new CliSetup(), [.. common, "--out", streamedOut, "--stream"]);

        memory.ExitCode.Should().Be(ExitCodes.Success, memory.Error);
        streamed.ExitCode.Should().Be(ExitCodes.Success, streamed.Error);
        streamed.Logs.Should().Contain(l => l.Contains("streaming", StringComparison.OrdinalIgnoreCase));
        using var a = TorchCausalLM.Load(memoryOut, ScalarType.Float32);
        using var b = TorchCausalLM.Load(streamedOut, ScalarType.Float32);
        using var source = TorchCausalLM.Load(ModelFolder, ScalarType.Float32);
        b.LayerCount.Should().Be(a.LayerCount).And.BeLessThan(source.LayerCount);
        var expected = a.Model.NamedWeights();
        foreach (var (name, weight) in b.Model.NamedWeights())
            (weight.shape.SequenceEqual(expected[name].shape) && weight.eq(expected[name]).all().item<bool>()).Should().BeTrue(name);
        File.Exists(Path.Combine(streamedOut, "tokenizer.json")).Should().BeTrue();
        File.Exists(Path.Combine(streamedOut, "pruning-report.json")).Should().BeTrue();
    }

    [Fact]
    public async Task Compare_Stream_GivesSameTableAsInMemory()
    {
        string[] common = ["compare", "--model", ModelFolder, "--methods", "pip,block-influence,perplexity-drop", "--ratios", "0.3", "--wikitext", Calibration, "--window", "32",
            "--calibration", Calibration, "--samples", "2", "--max-tokens", "24", "--sets", "2", "--dtype", "float32", "--json"];
        var memory = await CliRunner.RunAsync([.. common, "--out", Path.Combine(_root, "cmp-memory")]);
        var streamed = await CliRunner.RunAsync(new CliSetup(), [.. common, "--out", Path.Combine(_root, "cmp-streamed"), "--stream"]);

        memory.ExitCode.Should().Be(ExitCodes.Success, memory.Error);
        streamed.ExitCode.Should().Be(ExitCodes.Success, streamed.Error);
        streamed.Logs.Should().Contain(l => l.Contains("streaming", StringComparison.OrdinalIgnoreCase));
        using var m = JsonDocument.Parse(memory.Out);
        using var s = JsonDocument.Parse(streamed.Out);
        var expected = Rows(m.RootElement.GetProperty("comparison"));
        var actual = Rows(s.RootElement.GetProperty("comparison"));
        actual.Should().HaveCount(4);
        actual.Select(r => (r.Method, r.Removed, r.Parameters)).Should().Equal(expected.Select(r => (r.Method, r.Removed, r.Parameters)));
        actual.Should().Contain(r => r.Removed.Length > 0);
        for (int i = 0; i < expected.Count; i++)
            actual[i].Perplexity.Should().BeApproximately(expected[i].Perplexity, 1e-4 * expected[i].Perplexity, expected[i].Method);
        File.ReadAllText(Path.Combine(_root, "cmp-streamed", "comparison.md")).Should().Contain("PIP");

        static List<(string Method, string Removed, long Parameters, double Perplexity)> Rows(JsonElement comparison) =>
            [.. new[] { comparison.GetProperty("dense") }.Concat(comparison.GetProperty("rows").EnumerateArray()).Select(r => (
                r.GetProperty("method").GetString()!,
                string.Join(",", r.GetProperty("removed_layers").EnumerateArray().Select(l => l.GetInt32())),
                r.GetProperty("parameter_count").GetInt64(),
                r.GetProperty("perplexity")[0].GetProperty("perplexity").GetDouble()))];
    }

    [Fact]
    public async Task Compare_MemoryLimitBelowOneLayer_RefusedWithExitCode2()
    {
        var run = await CliRunner.RunAsync("compare", "--model", ModelFolder, "--out", Path.Combine(_root, "cmp-limit"), "--methods", "block-influence", "--ratios", "0.3",
            "--wikitext", Calibration, "--calibration", Calibration, "--dtype", "float32", "--memory-limit", "1K");

        run.ExitCode.Should().Be(ExitCodes.BadInput, run.Error);
        run.Error.Should().Contain("--memory-limit").And.Contain("streaming");
        Directory.Exists(Path.Combine(_root, "cmp-limit")).Should().BeFalse();
    }

    [Fact]
    public async Task Compare_StreamWithZeroShotTasks_RefusedWithExitCode2()
    {
        var task = Path.Combine(_root, "piqa.jsonl");
        File.WriteAllText(task, "{\"goal\": \"a\", \"sol1\": \"b\", \"sol2\": \"c\", \"label\": 0}\n");
        var run = await CliRunner.RunAsync("compare", "--model", ModelFolder, "--out", Path.Combine(_root, "cmp-tasks"), "--methods", "block-influence", "--ratios", "0.3",
            "--tasks", "piqa=" + task, "--calibration", Calibration, "--stream");

        run.ExitCode.Should().Be(ExitCodes.BadInput, run.Error);
        run.Error.Should().Contain("--tasks").And.Contain("--stream");
        Directory.Exists(Path.Combine(_root, "cmp-tasks")).Should().BeFalse();
    }

    [Fact]
    public async Task Eval_Stream_EqualsInMemory()
    {
        string[] common = ["eval", "--model", ModelFolder, "--text", Calibration, "--window", "32", "--stride", "16", "--max-tokens", "150", "--dtype", "float32", "--json"];
        var memory = await CliRunner.RunAsync(common);
        var streamed = await CliRunner.RunAsync([.. common, "--stream"]);
        memory.ExitCode.Should().Be(ExitCodes.Success, memory.Error);
        streamed.ExitCode.Should().Be(ExitCodes.Success, streamed.Error);
        using var m = JsonDocument.Parse(memory.Out);
        using var s = JsonDocument.Parse(streamed.Out);
        var expected = m.RootElement.GetProperty("nll").GetDouble();
        s.RootElement.GetProperty("nll").GetDouble().Should().BeApproximately(expected, 1e-4 * expected);
        s.RootElement.GetProperty("tokens").GetInt64().Should().Be(m.RootElement.GetProperty("tokens").GetInt64());
    }

    [Fact]
    public async Task Eval_MemoryLimitBetweenLayerAndModel_StreamsAutomaticallyAndSaysSo()
    {
        using var checkpoint = CheckpointFolder.Open(ModelFolder);
        var config = checkpoint.LoadModelConfig();
        long total = checkpoint.TensorNames.Where(n => !(config.TieWordEmbeddings && n == "lm_head.weight")).Sum(n => checkpoint.GetInfo(n).ElementCount);
        long layer = checkpoint.TensorNames.Where(n => n.StartsWith("model.layers.0.", StringComparison.Ordinal)).Sum(n => checkpoint.GetInfo(n).ElementCount);
        long resident = (long)(total * 4 * 1.5), working = layer * 4 * 3 + 2L * config.VocabSize * config.HiddenSize * 4;
        working.Should().BeLessThan(resident, "the test needs a limit between the two");
        var limit = (resident + working) / 2;

        var run = await CliRunner.RunAsync(new CliSetup(), ["eval", "--model", ModelFolder, "--text", Calibration, "--window", "32", "--max-tokens", "100", "--dtype", "float32", "--memory-limit", limit.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json"]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        run.Logs.Should().Contain(l => l.Contains("more than the memory limit", StringComparison.Ordinal) && l.Contains("streaming", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Prune_MemoryLimitBelowOneLayer_ExitsWithBadInputNamingWhatIsNeeded()
    {
        var run = await CliRunner.RunAsync("prune", "--model", ModelFolder, "--out", Path.Combine(_root, "x"), "--metric", "taylor", "--layers", "1",
            "--samples", "2", "--max-tokens", "16", "--memory-limit", "1K");
        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("--memory-limit").And.Contain("streaming").And.Contain("Give at least");
    }

    [Theory]
    [InlineData("taylor")]
    [InlineData("wanda-sp")]
    public async Task Prune_StreamWidth_WritesSameWeightsAsInMemory(string metric)
    {
        string[] common = ["prune", "--model", ModelFolder, "--mode", "width", "--metric", metric, "--ratio", "0.2", "--samples", "2", "--max-tokens", "24",
            "--dtype", "float32", "--layout", "per-layer", "--json"];
        var memoryOut = Path.Combine(_root, "memory-" + metric);
        var streamedOut = Path.Combine(_root, "streamed-" + metric);
        var memory = await CliRunner.RunAsync([.. common, "--out", memoryOut]);
        var streamed = await CliRunner.RunAsync(new CliSetup(), [.. common, "--out", streamedOut, "--stream"]);

        memory.ExitCode.Should().Be(ExitCodes.Success, memory.Error);
        streamed.ExitCode.Should().Be(ExitCodes.Success, streamed.Error);
        using var a = TorchCausalLM.Load(memoryOut, ScalarType.Float32);
        using var b = TorchCausalLM.Load(streamedOut, ScalarType.Float32);
        using var source = TorchCausalLM.Load(ModelFolder, ScalarType.Float32);
        b.ParameterCount.Should().Be(a.ParameterCount).And.BeLessThan(source.ParameterCount);
        var expected = a.Model.NamedWeights();
        var actual = b.Model.NamedWeights();
        actual.Keys.Should().BeEquivalentTo(expected.Keys);
        foreach (var (name, weight) in actual)
            (weight.shape.SequenceEqual(expected[name].shape) && weight.eq(expected[name]).all().item<bool>()).Should().BeTrue(name);
        File.Exists(Path.Combine(streamedOut, "pruning-report.json")).Should().BeTrue();
    }

    [Fact]
    public async Task Prune_StreamWidthSaveDtypeOtherThanStored_ExitsWithBadInput()
    {
        var run = await CliRunner.RunAsync("prune", "--model", ModelFolder, "--out", Path.Combine(_root, "wd"), "--mode", "width", "--metric", "magnitude", "--ratio", "0.1",
            "--samples", "2", "--max-tokens", "16", "--stream", "--save-dtype", "float16");
        run.ExitCode.Should().Be(ExitCodes.BadInput, run.Error);
        run.Error.Should().Contain("--save-dtype");
        Directory.Exists(Path.Combine(_root, "wd")).Should().BeFalse("nothing is written");
    }

    [Theory]
    [InlineData("--bias-compensation")]
    [InlineData("--layout", "compatible")]
    public async Task Prune_StreamWidthNeedingTheModelInMemory_ExitsWithBadInput(params string[] option)
    {
        var run = await CliRunner.RunAsync(["prune", "--model", ModelFolder, "--out", Path.Combine(_root, "w"), "--mode", "width", "--metric", "flap", "--ratio", "0.1",
            "--samples", "2", "--max-tokens", "16", "--stream", .. option]);
        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("--stream").And.Contain(option[0]);
    }

    [Fact]
    public async Task Eval_MemoryLimitNotASize_ExitsWithBadInput()
    {
        var run = await CliRunner.RunAsync("eval", "--model", ModelFolder, "--text", Calibration, "--memory-limit", "lots");
        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("not a size");
    }
}
