using System.Text.Json;
using Pip.Torch;

namespace Pip.Cli.Tests.Commands;

/// <summary>
/// A tiny random model with a BPE tokenizer trained on the bundled calibration text, and two prunings of it made once
/// for the class: PIP (pip metric, lexicon perturber, discriminator, iterative, ratio 0.4, bundled calibration) and a
/// baseline (block-influence, one-shot, 1 layer, report outside the output folder, stored as bfloat16).
/// </summary>
public sealed class PruneFixture : IAsyncLifetime
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), "pip-cli-prune-tests-" + Guid.NewGuid().ToString("N"));

    /// <summary>The calibration text bundled with the tool (copied next to the test assembly by the project reference).</summary>
    public static string BundledCalibration => Path.Combine(AppContext.BaseDirectory, "data", "calibration", "brown-sample.txt");

    public string ModelFolder => Path.Combine(Root, "tiny");

    public string PipFolder => Path.Combine(Root, "pruned-pip");

    public string BaselineFolder => Path.Combine(Root, "pruned-block-influence");

    public string BaselineReport => Path.Combine(Root, "reports", "block-influence.json");

    internal CliRun Pip { get; private set; } = null!;

    internal CliRun Baseline { get; private set; } = null!;

    public string WidthFolder => Path.Combine(Root, "pruned-width");

    internal CliRun Width { get; private set; } = null!;

    /// <summary>The same width pruning as <see cref="Width"/>, written in the default layout (auto, here compatible).</summary>
    public string WidthCompatibleFolder => Path.Combine(Root, "pruned-width-compatible");

    internal CliRun WidthCompatible { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Root);
        var created = await CliRunner.RunAsync("create-random", "--out", ModelFolder, "--preset", "tiny", "--seed", "3",
            "--tokenizer-corpus", BundledCalibration, "--json");
        if (created.ExitCode != 0) throw new InvalidOperationException("create-random failed: " + created.Error);

        // No --calibration: the bundled text is the default.
        Pip = await CliRunner.RunAsync("prune", "--model", ModelFolder, "--out", PipFolder, "--metric", "pip", "--ratio", "0.4",
            "--samples", "2", "--max-tokens", "32", "--sets", "2", "--rate", "0.2", "--json");
        Baseline = await CliRunner.RunAsync("prune", "--model", ModelFolder, "--out", BaselineFolder, "--metric", "block-influence",
            "--strategy", "one-shot", "--layers", "1", "--samples", "2", "--max-tokens", "32", "--calibration", BundledCalibration,
            "--report", BaselineReport, "--save-dtype", "bfloat16", "--json");
        string[] width = ["prune", "--model", ModelFolder, "--mode", "width", "--metric", "flap", "--units", "both", "--allocation", "adaptive",
            "--ratio", "0.1", "--layer-start", "1", "--layer-end", "3", "--bias-compensation", "--samples", "2", "--max-tokens", "32", "--json"];
        Width = await CliRunner.RunAsync([.. width, "--out", WidthFolder, "--layout", "per-layer"]);
        WidthCompatible = await CliRunner.RunAsync([.. width, "--out", WidthCompatibleFolder]);
    }

    public Task DisposeAsync()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
        return Task.CompletedTask;
    }
}

public sealed class PruneCommandTests(PruneFixture fixture) : IClassFixture<PruneFixture>
{
    private const int TinyLayers = 4;

    [Fact]
    public void Prune_PipRatio_RemovesAsManyLayersAsFitTheRatio()
    {
        fixture.Pip.ExitCode.Should().Be(ExitCodes.Success, fixture.Pip.Error);
        using var json = JsonDocument.Parse(fixture.Pip.Out);
        var root = json.RootElement;
        root.GetProperty("metric").GetString().Should().Be("pip");
        root.GetProperty("perturber").GetString().Should().Be("lexicon");
        root.GetProperty("strategy").GetString().Should().Be("iterative");
        root.GetProperty("filters").EnumerateArray().Select(f => f.GetString()).Should().Equal("consistency");
        root.GetProperty("calibration").GetString().Should().Be(Path.GetFullPath(PruneFixture.BundledCalibration));

        // The tiny preset: 4 layers of 46,208 parameters in 250,432; 40 % fits two layers (36.9 %), not three (55.3 %).
        var before = root.GetProperty("parameters_before").GetInt64();
        var after = root.GetProperty("parameters_after").GetInt64();
        var removed = root.GetProperty("removed_layers").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        removed.Should().HaveCount(2).And.OnlyHaveUniqueItems().And.OnlyContain(l => l >= 0 && l < TinyLayers);
        root.GetProperty("final_layers").GetInt32().Should().Be(TinyLayers - 2);
        (before - after).Should().BeLessThanOrEqualTo((long)(0.4 * before));
        root.GetProperty("removed_parameter_ratio").GetDouble().Should().BeApproximately((double)(before - after) / before, 1e-6);
        root.GetProperty("stop_reason").GetString().Should().Be("target_reached");

        // Iterative: one layer per round, reported by original index.
        var rounds = root.GetProperty("rounds").EnumerateArray().ToArray();
        rounds.Should().HaveCount(2);
        rounds.SelectMany(r => r.GetProperty("removed").EnumerateArray().Select(x => x.GetProperty("original_layer").GetInt32())).Should().Equal(removed);
    }

    [Fact]
    public void Prune_PipRatio_OutputReloadsWithTheRemainingLayersUnchanged()
    {
        fixture.Pip.ExitCode.Should().Be(ExitCodes.Success, fixture.Pip.Error);
        using var json = JsonDocument.Parse(fixture.Pip.Out);
        var removed = json.RootElement.GetProperty("removed_layers").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var remaining = Enumerable.Range(0, TinyLayers).Except(removed).ToArray();

        using var original = TorchCausalLM.Load(fixture.ModelFolder);
        using var pruned = TorchCausalLM.Load(fixture.PipFolder);
        pruned.LayerCount.Should().Be(TinyLayers - removed.Length);
        pruned.Config.NumHiddenLayers.Should().Be(TinyLayers - removed.Length);
        pruned.Tokenizer.Should().NotBeNull("the tokenizer files are copied with the model");
        ReadConfig(fixture.PipFolder).GetProperty("num_hidden_layers").GetInt32().Should().Be(TinyLayers - removed.Length);
        ReadConfig(fixture.PipFolder).GetProperty("torch_dtype").GetString().Should().Be("float32");

        var before = original.Module.NamedWeights();
        var after = pruned.Module.NamedWeights();
        after.Keys.Should().NotContain(k => k.StartsWith($"model.layers.{remaining.Length}.", StringComparison.Ordinal));
        foreach (var (name, tensor) in after)
        {
            var source = name;
            if (name.StartsWith("model.layers.", StringComparison.Ordinal))
            {
                var parts = name.Split('.', 4);
                source = $"model.layers.{remaining[int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture)]}.{parts[3]}";
            }

            tensor.allclose(before[source], rtol: 0, atol: 0).Should().BeTrue($"{name} must equal the original {source}");
        }
    }

    [Fact]
    public void Prune_PipRatio_ReportMatchesTheSummaryAndTheModel()
    {
        fixture.Pip.ExitCode.Should().Be(ExitCodes.Success, fixture.Pip.Error);
        using var json = JsonDocument.Parse(fixture.Pip.Out);
        var root = json.RootElement;
        var reportFile = Path.Combine(fixture.PipFolder, "pruning-report.json");
        root.GetProperty("report").GetString().Should().Be(reportFile);

        var report = PruningReportJson.Deserialize(File.ReadAllText(reportFile));
        report.RemovedOriginalLayers.Should().Equal(root.GetProperty("removed_layers").EnumerateArray().Select(e => e.GetInt32()));
        report.Settings.Metric.Should().Be("pip");
        report.Settings.PerturbationSets.Should().Be(2);
        report.Settings.Target.ParameterRatio.Should().Be(0.4);
        report.OriginalLayerCount.Should().Be(TinyLayers);
        report.FinalLayerCount.Should().Be(TinyLayers - report.RemovedOriginalLayers.Count);

        using var original = TorchCausalLM.Load(fixture.ModelFolder);
        using var pruned = TorchCausalLM.Load(fixture.PipFolder);
        report.OriginalParameterCount.Should().Be(original.ParameterCount).And.Be(root.GetProperty("parameters_before").GetInt64());
        report.FinalParameterCount.Should().Be(pruned.ParameterCount).And.Be(root.GetProperty("parameters_after").GetInt64());
        var removedParameters = report.Rounds.SelectMany(r => r.Removed).Sum(r => r.ParameterCount);
        removedParameters.Should().Be(report.OriginalParameterCount - report.FinalParameterCount);
        report.RemovedOriginalLayers.Sum(l => original.GetLayerParameterCount(l)).Should().Be(removedParameters);

        // Samples were cut at a word boundary to the token budget, before the twins were made.
        report.Samples.Should().HaveCount(2);
        var calibration = File.ReadAllText(PruneFixture.BundledCalibration);
        foreach (var sample in report.Samples)
        {
            sample.TokenIds!.Count.Should().BeLessThanOrEqualTo(32).And.BeGreaterThan(16);
            calibration.Should().Contain(sample.Text);
        }

        report.Rounds.Should().OnlyContain(r => r.PerturbationSets.Count == 2 && r.PerturbationSets.All(set => set.All(twin => twin.Edits.Count > 0)));
    }

    [Fact]
    public void Prune_BlockInfluenceOneShot_WritesTheReportWhereAskedAndStoresBFloat16()
    {
        fixture.Baseline.ExitCode.Should().Be(ExitCodes.Success, fixture.Baseline.Error);
        using var json = JsonDocument.Parse(fixture.Baseline.Out);
        var root = json.RootElement;
        root.GetProperty("metric").GetString().Should().Be("block-influence");
        root.GetProperty("perturber").ValueKind.Should().Be(JsonValueKind.Null);
        root.GetProperty("filters").GetArrayLength().Should().Be(0, "the discriminator is for perturbation metrics only");
        root.GetProperty("strategy").GetString().Should().Be("one-shot");
        root.GetProperty("save_dtype").GetString().Should().Be("bfloat16");

        File.Exists(Path.Combine(fixture.BaselineFolder, "pruning-report.json")).Should().BeFalse();
        var report = PruningReportJson.Deserialize(File.ReadAllText(fixture.BaselineReport));
        report.Settings.Metric.Should().Be("block-influence");
        report.Rounds.Should().ContainSingle().Which.Removed.Should().ContainSingle();
        // One-shot with block influence removes the layer whose output is most similar to its input: the lowest score.
        var round = report.Rounds[0];
        round.Removed[0].Layer.Should().Be(Enumerable.Range(0, TinyLayers).MinBy(l => round.Scores[l]));

        ReadConfig(fixture.BaselineFolder).GetProperty("torch_dtype").GetString().Should().Be("bfloat16");
        using var pruned = TorchCausalLM.Load(fixture.BaselineFolder, TorchSharp.torch.ScalarType.Float32);
        pruned.LayerCount.Should().Be(TinyLayers - 1);
        report.RemainingOriginalLayers.Should().Equal(Enumerable.Range(0, TinyLayers).Except(report.RemovedOriginalLayers));
    }

    [Fact]
    public async Task Prune_Table_ShowsOriginalIndicesParametersAndRounds()
    {
        var output = Path.Combine(fixture.Root, "table-" + Guid.NewGuid().ToString("N"));

        var run = await CliRunner.RunAsync("prune", "--model", fixture.ModelFolder, "--out", output, "--metric", "magnitude", "--layers", "2",
            "--samples", "2", "--calibration", PruneFixture.BundledCalibration);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        var report = PruningReportJson.Deserialize(File.ReadAllText(Path.Combine(output, "pruning-report.json")));
        var lines = run.Out.Split('\n');
        lines.Should().Contain(l => l.StartsWith("Removed layers", StringComparison.Ordinal) && l.Contains(string.Join(", ", report.RemovedOriginalLayers)));
        lines.Should().Contain(l => l.StartsWith("Layers", StringComparison.Ordinal) && l.Contains($"{TinyLayers} → {TinyLayers - 2}"));
        lines.Should().Contain(l => l.StartsWith("Parameters", StringComparison.Ordinal) && l.Contains("250,432 → ") && l.Contains("% removed"));
        lines.Count(l => l.TrimStart().StartsWith("round ", StringComparison.Ordinal)).Should().Be(2);
        lines.Should().Contain(l => l.StartsWith("Time", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Prune_ExistingOutputWithoutOverwrite_ExitsWithBadInputBeforeLoadingAnything()
    {
        var output = Path.Combine(fixture.Root, "existing-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(output);
        var marker = Path.Combine(output, "keep.txt");
        await File.WriteAllTextAsync(marker, "mine");

        var run = await CliRunner.RunAsync(new CliSetup(), ["prune", "--model", fixture.ModelFolder, "--out", output, "--metric", "magnitude", "--layers", "1"]);

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(output).And.Contain("--overwrite");
        run.Logs.Should().NotContain(l => l.Contains("Loaded", StringComparison.Ordinal) || l.Contains("Calibration", StringComparison.Ordinal));
        Directory.GetFileSystemEntries(output).Should().Equal(marker);
        (await File.ReadAllTextAsync(marker)).Should().Be("mine");
    }

    [Fact]
    public async Task Prune_ExistingOutputWithOverwrite_ReplacesTheFolder()
    {
        var output = Path.Combine(fixture.Root, "replaced-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(output);
        await File.WriteAllTextAsync(Path.Combine(output, "old.txt"), "old");

        var run = await CliRunner.RunAsync("prune", "--model", fixture.ModelFolder, "--out", output, "--metric", "magnitude", "--layers", "1",
            "--samples", "2", "--overwrite");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Error);
        File.Exists(Path.Combine(output, "old.txt")).Should().BeFalse();
        File.Exists(Path.Combine(output, "pruning-report.json")).Should().BeTrue();
        ReadConfig(output).GetProperty("num_hidden_layers").GetInt32().Should().Be(TinyLayers - 1);
    }

    [Fact]
    public async Task Prune_InvalidRatioSamplesAndNorm_ExitsWithBadInputListingEveryError()
    {
        var output = Path.Combine(fixture.Root, "invalid-" + Guid.NewGuid().ToString("N"));

        var run = await CliRunner.RunAsync(new CliSetup(), ["prune", "--model", fixture.ModelFolder, "--out", output, "--ratio", "1.5", "--samples", "0", "--norm", "L7"]);

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Out.Should().BeEmpty();
        var lines = run.Error.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        lines[0].Should().Contain("3 invalid option(s)");
        lines.Should().Contain(l => l.StartsWith("--ratio:", StringComparison.Ordinal) && l.Contains("1.5"));
        lines.Should().Contain(l => l.StartsWith("--samples:", StringComparison.Ordinal) && l.Contains("SampleCount"));
        lines.Should().Contain(l => l.StartsWith("--norm:", StringComparison.Ordinal) && l.Contains("'L7'") && l.Contains("L2"));
        run.Error.Should().NotContain("   at ");
        run.Logs.Should().NotContain(l => l.Contains("Loaded", StringComparison.Ordinal));
        Directory.Exists(output).Should().BeFalse();
    }

    [Theory]
    [InlineData(new[] { "--ratio", "0.2", "--layers", "1" }, "--ratio and --layers")]
    [InlineData(new[] { "--sets", "1" }, "--sets:")]
    [InlineData(new[] { "--rate", "0" }, "--rate:")]
    [InlineData(new[] { "--perturber", "random-char", "--word-list", "words.txt" }, "--word-list:")]
    [InlineData(new[] { "--max-tokens", "1" }, "--max-tokens:")]
    [InlineData(new[] { "--guard-first", "-1" }, "--guard-first:")]
    [InlineData(new[] { "--metric", "no-such-metric" }, "no-such-metric")]
    [InlineData(new[] { "--layers", "4" }, "at most 3 can be removed")]
    public async Task Prune_InvalidOption_ExitsWithBadInputNamingTheOption(string[] options, string expected)
    {
        var output = Path.Combine(fixture.Root, "invalid-" + Guid.NewGuid().ToString("N"));

        var run = await CliRunner.RunAsync(["prune", "--model", fixture.ModelFolder, "--out", output, .. options]);

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(expected).And.NotContain("   at ");
        Directory.Exists(output).Should().BeFalse();
    }

    [Fact]
    public async Task Prune_MissingCalibrationFile_ExitsWithBadInputNamingIt()
    {
        var missing = Path.Combine(fixture.Root, "no-such-calibration.txt");

        var run = await CliRunner.RunAsync("prune", "--model", fixture.ModelFolder, "--out", Path.Combine(fixture.Root, "unused"), "--calibration", missing);

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain(missing).And.Contain("does not exist");
    }

    [Fact]
    public async Task Prune_CancelledWhileScoring_ExitsWithCancelledAndWritesNothing()
    {
        var parent = Path.Combine(fixture.Root, "cancel-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(parent);
        var output = Path.Combine(parent, "pruned");
        var report = Path.Combine(parent, "report.json");
        using var cts = new CancellationTokenSource();
        var setup = new CliSetup { OnLog = m => { if (m.Contains("scoring", StringComparison.Ordinal)) cts.Cancel(); } };

        var run = await CliRunner.RunAsync(setup, ["prune", "--model", fixture.ModelFolder, "--out", output, "--report", report, "--metric", "pip",
            "--samples", "2", "--max-tokens", "16", "--sets", "2"], cts.Token);

        run.ExitCode.Should().Be(ExitCodes.Cancelled, run.Error);
        run.Logs.Should().Contain(l => l.Contains("scoring", StringComparison.Ordinal));
        run.Out.Should().BeEmpty();
        Directory.GetFileSystemEntries(parent).Should().BeEmpty("neither the model, the report nor a temporary folder may be left");
    }

    [Theory]
    [InlineData("prune")]
    [InlineData("inspect")]
    [InlineData("eval")]
    [InlineData("generate")]
    public async Task Command_NoModelAndNoBundledModel_ExitsWithBadInputAskingForModel(string command)
    {
        var setup = new CliSetup { DefaultModelFolder = Path.Combine(fixture.Root, "no-bundled-model") };
        string[] args = command switch
        {
            "prune" => ["prune", "--out", Path.Combine(fixture.Root, "unused-" + Guid.NewGuid().ToString("N"))],
            "eval" => ["eval", "--text", PruneFixture.BundledCalibration],
            "generate" => ["generate", "--prompt", "Hello"],
            _ => [command],
        };

        var run = await CliRunner.RunAsync(setup, args);

        run.ExitCode.Should().Be(ExitCodes.BadInput);
        run.Error.Should().Contain("no default model is bundled").And.Contain("--model");
    }

    [Fact]
    public async Task Prune_NoModelOption_UsesTheBundledDefaultModel()
    {
        var output = Path.Combine(fixture.Root, "default-model-" + Guid.NewGuid().ToString("N"));
        var setup = new CliSetup { DefaultModelFolder = fixture.ModelFolder };

        var inspect = await CliRunner.RunAsync(setup, ["inspect", "--json"]);
        var prune = await CliRunner.RunAsync(setup, ["prune", "--out", output, "--metric", "magnitude", "--layers", "1", "--samples", "2", "--json"]);

        inspect.ExitCode.Should().Be(ExitCodes.Success, inspect.Error);
        using (var json = JsonDocument.Parse(inspect.Out)) json.RootElement.GetProperty("model").GetString().Should().Be(fixture.ModelFolder);
        prune.ExitCode.Should().Be(ExitCodes.Success, prune.Error);
        using (var json = JsonDocument.Parse(prune.Out)) json.RootElement.GetProperty("model").GetString().Should().Be(fixture.ModelFolder);
        ReadConfig(output).GetProperty("num_hidden_layers").GetInt32().Should().Be(TinyLayers - 1);
    }

    [Fact]
    public void BundledCalibration_IsCopiedNextToTheTool()
    {
        File.Exists(PruneFixture.BundledCalibration).Should().BeTrue();
        var paragraphs = File.ReadAllText(PruneFixture.BundledCalibration).Split("\n\n");
        paragraphs.Length.Should().BeGreaterThan(100);
        paragraphs.Should().OnlyContain(p => p.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length >= 32);
    }

    private static JsonElement ReadConfig(string folder)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        return json.RootElement.Clone();
    }

    [Fact]
    public void Prune_WidthFlapAdaptive_PrunesUnitsOfTheRangeAndSavesALoadableCheckpointWithItsReport()
    {
        fixture.Width.ExitCode.Should().Be(ExitCodes.Success, fixture.Width.Error);
        using var json = JsonDocument.Parse(fixture.Width.Out);
        var root = json.RootElement;
        root.GetProperty("mode").GetString().Should().Be("width");
        root.GetProperty("metric").GetString().Should().Be("flap");
        root.GetProperty("strategy").GetString().Should().Be("width-adaptive");
        root.GetProperty("final_layers").GetInt32().Should().Be(TinyLayers);
        var before = root.GetProperty("parameters_before").GetInt64();
        var after = root.GetProperty("parameters_after").GetInt64();
        after.Should().BeLessThan(before);

        var layers = root.GetProperty("width_layers").EnumerateArray().ToArray();
        layers.Should().HaveCount(TinyLayers);
        foreach (var l in layers.Where(l => l.GetProperty("original_layer").GetInt32() is 0 or 3))
        {
            l.GetProperty("heads_after").GetInt32().Should().Be(l.GetProperty("heads_before").GetInt32(), "layers outside [1, 3) keep their units");
            l.GetProperty("channels_after").GetInt32().Should().Be(176);
        }

        layers.Sum(l => l.GetProperty("channels_before").GetInt32() - l.GetProperty("channels_after").GetInt32()
            + l.GetProperty("heads_before").GetInt32() - l.GetProperty("heads_after").GetInt32()).Should().BeGreaterThan(0);

        var report = PruningReportJson.Deserialize(File.ReadAllText(Path.Combine(fixture.WidthFolder, "pruning-report.json")));
        report.Settings.Mode.Should().Be(PruningMode.Width);
        report.Rounds[0].Width!.BiasCompensation.Should().BeTrue();
        report.Rounds[0].Width!.LayerStart.Should().Be(1);
        report.Settings.Options["metric.GroupReduction"].Should().Be("Sum");

        using var pruned = TorchCausalLM.Load(fixture.WidthFolder);
        pruned.ParameterCount.Should().Be(after).And.Be(report.FinalParameterCount);
        pruned.Config.MlpBias.Should().BeTrue();
        pruned.Config.AttentionBias.Should().BeTrue();
        for (int l = 0; l < TinyLayers; l++)
        {
            var record = report.Rounds[0].Width!.Layers[l];
            pruned.GetUnitCount(l, WidthUnitKind.Heads).Should().Be(record.HeadsAfter);
            pruned.GetUnitCount(l, WidthUnitKind.Channels).Should().Be(record.ChannelsAfter);
        }
    }

    [Fact]
    public void Prune_WidthDefaultLayout_WritesUniformShapesWithTheSameLogitsAsThePerLayerLayout()
    {
        fixture.Width.ExitCode.Should().Be(ExitCodes.Success, fixture.Width.Error);
        fixture.WidthCompatible.ExitCode.Should().Be(ExitCodes.Success, fixture.WidthCompatible.Error);
        using var perLayerJson = JsonDocument.Parse(fixture.Width.Out);
        using var json = JsonDocument.Parse(fixture.WidthCompatible.Out);
        var root = json.RootElement;
        perLayerJson.RootElement.GetProperty("layout").GetString().Should().Be("per-layer");
        perLayerJson.RootElement.GetProperty("padding_parameters").GetInt64().Should().Be(0);
        root.GetProperty("layout").GetString().Should().Be("compatible");
        var before = root.GetProperty("parameters_before").GetInt64();
        var after = root.GetProperty("parameters_after").GetInt64();
        after.Should().Be(perLayerJson.RootElement.GetProperty("parameters_after").GetInt64(), "the layout does not change the pruning");
        // Layers 0 and 3 keep every unit, so the one shape is the original one, plus the biases FLAP's compensation added.
        var stored = root.GetProperty("stored_parameters").GetInt64();
        root.GetProperty("padding_parameters").GetInt64().Should().Be(stored - after).And.BePositive();

        ReadConfig(fixture.WidthFolder).TryGetProperty("per_layer_config", out _).Should().BeTrue();
        var config = ReadConfig(fixture.WidthCompatibleFolder);
        config.TryGetProperty("per_layer_config", out _).Should().BeFalse();
        (config.GetProperty("num_attention_heads").GetInt32(), config.GetProperty("num_key_value_heads").GetInt32(),
            config.GetProperty("head_dim").GetInt32(), config.GetProperty("intermediate_size").GetInt32()).Should().Be((4, 2, 16, 176));
        (config.GetProperty("attention_bias").GetBoolean(), config.GetProperty("mlp_bias").GetBoolean()).Should().Be((true, true));

        using var perLayer = TorchCausalLM.Load(fixture.WidthFolder);
        using var compatible = TorchCausalLM.Load(fixture.WidthCompatibleFolder);
        compatible.ParameterCount.Should().Be(stored);
        perLayer.ParameterCount.Should().Be(after);
        before.Should().BeLessThan(stored, "the compensation biases are stored in every layer");
        var ids = compatible.Tokenize("The history of the city is the history of its people.");
        using var input = TorchSharp.torch.tensor(ids.Select(i => (long)i).ToArray(), new long[] { 1, ids.Count });
        using var expected = perLayer.Module.Logits(input);
        using var actual = compatible.Module.Logits(input);
        (actual - expected).abs().max().item<float>().Should().BeLessThan(1e-5f);
    }

    [Fact]
    public async Task Prune_LayoutCompatibleForLayersWithDifferentGroupSizes_ExitsWithBadInputBeforePruning()
    {
        var folder = Path.Combine(fixture.Root, "mixed-groups-" + Guid.NewGuid().ToString("N"));
        using (var tiny = TorchCausalLM.Load(fixture.ModelFolder))
        {
            // Layer 1 shares its single key/value head among all 4 query heads; the others share 2 among 4.
            var config = tiny.Config.WithLayerShapes([new(4, 2, 176), new(4, 1, 176), new(4, 2, 176), new(4, 2, 176)]);
            using var mixed = new TorchCausalLM(Pip.Torch.Models.LlamaForCausalLM.CreateRandom(config, seed: 1), tiny.Tokenizer, fixture.ModelFolder);
            mixed.Save(folder);
        }

        var result = await CliRunner.RunAsync("prune", "--model", folder, "--out", Path.Combine(fixture.Root, "never-" + Guid.NewGuid().ToString("N")),
            "--mode", "width", "--ratio", "0.1", "--layout", "compatible", "--samples", "2", "--max-tokens", "32");

        result.ExitCode.Should().Be(ExitCodes.BadInput, result.Error);
        result.Error.Should().Contain("--layout compatible").And.Contain(folder).And.Contain("different numbers of query heads (2, 4)").And.Contain("--layout per-layer");
    }

    [Theory]
    [InlineData(new[] { "--layout", "padded" }, "padded")]
    [InlineData(new[] { "--mode", "width", "--metric", "block-influence" }, "--metric: 'block-influence' is a depth metric")]
    [InlineData(new[] { "--mode", "width", "--layers", "1" }, "--layers: width pruning removes no layer")]
    [InlineData(new[] { "--mode", "width", "--metric", "taylor", "--bias-compensation" }, "--bias-compensation: needs the input means")]
    [InlineData(new[] { "--mode", "width", "--layer-start", "3", "--layer-end", "2" }, "--layer-end")]
    [InlineData(new[] { "--units", "heads" }, "--units: width options need --mode width")]
    [InlineData(new[] { "--metric", "wanda-sp" }, "--metric: 'wanda-sp' is a width metric")]
    public async Task Prune_InvalidWidthOptions_ExitsWithBadInputNamingTheOption(string[] options, string message)
    {
        var result = await CliRunner.RunAsync(["prune", "--model", fixture.ModelFolder, "--out", Path.Combine(fixture.Root, "never-" + Guid.NewGuid().ToString("N")), .. options]);

        result.ExitCode.Should().Be(ExitCodes.BadInput, result.Error);
        result.Error.Should().Contain(message);
    }
}
