using Pip.Torch.Evaluation;
using Pip.Torch.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.EndToEnd;

/// <summary>
/// The library path a user takes, without the CLI: load a checkpoint, prune it with PIP (PertImport, lexicon
/// perturber, consistency discriminator, iterative greedy), save it, reload it through the public loader, evaluate it.
/// </summary>
public sealed class PipPipelineEndToEndTests
{
    [Fact]
    public async Task PipPipeline_TinyCheckpoint_PrunesSavesReloadsAndEvaluates()
    {
        using var checkpoint = EndToEndCheckpoint.Create(layers: 4, seed: 11);
        using var model = TorchCausalLM.Load(checkpoint.ModelFolder);
        var pipeline = new PipelineBuilder()
            .Configure(new PipelineOptions { Target = PruningTarget.LayerCount(2), Seed = 5, PerturbationSets = 2 })
            .UsePertImportMetric(new TorchMetricOptions { MaxTokens = 32 })
            .UseLexiconPerturber(new LexiconPerturberOptions { Rate = 0.2 })
            .AddConsistencyDiscriminator()
            .UseIterativeGreedy()
            .Build();
        var calibration = CalibrationSet.FromTexts(EndToEndCheckpoint.Texts);

        var report = await pipeline.RunAsync(model, calibration);

        // Two rounds of one layer each; every round removed the lowest-scoring candidate the discriminator left.
        report.Settings.Metric.Should().Be(TorchMetricConstants.PertImport);
        report.Settings.Perturber.Should().Be(PerturbationConstants.LexiconPerturberName);
        report.Settings.Filters.Should().Equal(ConsistencyDiscriminatorConstants.Name);
        report.StopReason.Should().Be(PruningStopReason.TargetReached);
        report.Rounds.Should().HaveCount(2);
        foreach (var round in report.Rounds)
        {
            round.PerturbationSets.Should().HaveCount(2);
            round.PerturbationSets.SelectMany(s => s).Should().OnlyContain(t => t.Edits.Count > 0 && t.Text != EndToEndCheckpoint.Texts[t.SampleIndex]);
            round.PerPerturbationSetScores.Should().HaveCount(2);
            round.Scores.Should().OnlyContain(s => double.IsFinite(s) && s > 0);
            round.Removed.Should().ContainSingle().Which.Layer.Should().Be(round.Candidates.MinBy(c => round.Scores[c]));
        }

        report.RemovedOriginalLayers.Should().HaveCount(2).And.OnlyHaveUniqueItems();
        model.LayerCount.Should().Be(2);
        model.OriginalLayerIndices.Should().Equal(report.RemainingOriginalLayers);
        var tokens = model.Tokenize(string.Join(" ", EndToEndCheckpoint.Texts));
        var inMemory = Perplexity.Evaluate(model.Module, tokens, windowLength: 64);

        var output = checkpoint.PathOf("pruned");
        model.Save(output);
        await PruningReportJson.WriteAsync(report, Path.Combine(output, "pruning-report.json"));

        using var reloaded = TorchCausalLM.Load(output);
        using var original = TorchCausalLM.Load(checkpoint.ModelFolder);
        reloaded.LayerCount.Should().Be(2);
        reloaded.Config.NumHiddenLayers.Should().Be(2);
        reloaded.ParameterCount.Should().Be(report.FinalParameterCount);
        reloaded.Tokenizer.Should().NotBeNull();
        var before = original.Module.NamedWeights();
        foreach (var (name, weight) in reloaded.Module.NamedWeights())
        {
            var source = name;
            if (name.StartsWith("model.layers.", StringComparison.Ordinal))
            {
                var parts = name.Split('.', 4);
                source = $"model.layers.{report.RemainingOriginalLayers[int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture)]}.{parts[3]}";
            }

            weight.allclose(before[source], rtol: 0, atol: 0).Should().BeTrue($"{name} must be the original {source}");
        }

        var result = Perplexity.Evaluate(reloaded.Module, reloaded.Tokenize(string.Join(" ", EndToEndCheckpoint.Texts)), windowLength: 64);
        double.IsFinite(result.Perplexity).Should().BeTrue();
        result.Perplexity.Should().BeGreaterThan(1);
        result.Nll.Should().Be(inMemory.Nll, "the saved float32 model is the pruned model");
        var originalPerplexity = Perplexity.Evaluate(original.Module, tokens, windowLength: 64).Perplexity;
        result.Perplexity.Should().NotBe(originalPerplexity, "removing two of four layers changes the model");

        var reread = PruningReportJson.Deserialize(await File.ReadAllTextAsync(Path.Combine(output, "pruning-report.json")));
        reread.RemovedOriginalLayers.Should().Equal(report.RemovedOriginalLayers);
    }

    [Fact]
    public async Task PipPipeline_CancelledBeforeRemoval_LeavesTheModelUnchanged()
    {
        using var checkpoint = EndToEndCheckpoint.Create(layers: 3, seed: 12);
        using var model = TorchCausalLM.Load(checkpoint.ModelFolder);
        var snapshot = model.Module.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        using var cts = new CancellationTokenSource();
        var pipeline = new PipelineBuilder()
            .Configure(new PipelineOptions { Target = PruningTarget.LayerCount(1), PerturbationSets = 2 })
            .UsePertImportMetric(new TorchMetricOptions { MaxTokens = 32 })
            .UseLexiconPerturber()
            .AddConsistencyDiscriminator()
            .Build();
        var progress = new CancelOnScoring(cts);

        var act = () => pipeline.RunAsync(model, CalibrationSet.FromTexts(EndToEndCheckpoint.Texts), progress, cts.Token);

        await act.Should().ThrowAsync<OperationCanceledException>();
        progress.Cancelled.Should().BeTrue();
        model.LayerCount.Should().Be(3);
        foreach (var (name, weight) in model.Module.NamedWeights())
        {
            weight.allclose(snapshot[name], rtol: 0, atol: 0).Should().BeTrue(name);
        }

        foreach (var t in snapshot.Values) t.Dispose();
    }

    private sealed class CancelOnScoring(CancellationTokenSource cts) : IProgress<PruningProgress>
    {
        public bool Cancelled { get; private set; }

        public void Report(PruningProgress value)
        {
            if (value.Stage != PruningStage.Scoring) return;
            Cancelled = true;
            cts.Cancel();
        }
    }
}
