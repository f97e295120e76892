using Pip.Checkpoints;
using Pip.Torch.Evaluation;
using Pip.Torch.Pruning;
using Pip.Torch.Streaming;
using Pip.Torch.Tests.Pruning;
using static Pip.Torch.Tests.Pruning.PruningFixtures;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Streaming;

/// <summary>Every depth metric gives the same scores on a model streamed from its checkpoint as on the model in memory.</summary>
public sealed class StreamedMetricsTests
{
    private const double Relative = 1e-4;

    public static TheoryData<long> HeadChunks => new() { 256L << 20, StreamingFixture.SmallHeadChunk };

    [Theory]
    [InlineData(PertImportAggregation.PerSampleMean, 256L << 20)]
    [InlineData(PertImportAggregation.PerSampleMean, StreamingFixture.SmallHeadChunk)]
    [InlineData(PertImportAggregation.SummedDifference, StreamingFixture.SmallHeadChunk)]
    public async Task PertImport_Streamed_EqualsInMemory(PertImportAggregation aggregation, long headChunk)
    {
        using var f = new StreamingFixture(seed: 3, headChunkBytes: headChunk);
        var metric = new PerturbationImportanceMetric(TestNorm.L2, aggregation);
        var memory = await metric.ScoreAsync(Request(f.InMemory, 0, 1));
        var streamed = await metric.ScoreAsync(Request(f.Streamed, 0, 1));
        f.Streamed.Engine.IsStreaming.Should().BeTrue();
        memory.Scores.Should().OnlyContain(s => s > 0);
        streamed.Scores.ShouldBeCloseTo(memory.Scores, Relative);
        for (int set = 0; set < 2; set++) streamed.PerPerturbationSet![set].ShouldBeCloseTo(memory.PerPerturbationSet![set], Relative);
    }

    [Fact]
    public async Task PertImport_HiddenStatesSpilledToFile_EqualsInMemoryAndDeletesTheFile()
    {
        using var f = new StreamingFixture(seed: 4);
        var spillFolder = f.Folder + "-spill";
        using var spilling = StreamedCausalLM.Open(f.Folder, new StreamingOptions { ComputeType = ScalarType.Float32, SpillThresholdBytes = 0, SpillDirectory = spillFolder });
        var metric = new PerturbationImportanceMetric(TestNorm.L2);
        var memory = await metric.ScoreAsync(Request(f.InMemory, 0));
        var streamed = await metric.ScoreAsync(Request(spilling, 0));
        streamed.Scores.ShouldBeCloseTo(memory.Scores, Relative);
        Directory.GetFiles(spillFolder).Should().BeEmpty("the spill file is deleted when the pass ends");
        Directory.Delete(spillFolder);
    }

    [Theory]
    [MemberData(nameof(HeadChunks))]
    public async Task GradientAndTaylor_Streamed_EqualInMemory(long headChunk)
    {
        using var f = new StreamingFixture(seed: 5, headChunkBytes: headChunk);
        foreach (IImportanceMetric metric in new IImportanceMetric[] { new GradientNormMetric(TestNorm.L1), new TaylorMetric() })
        {
            var memory = await metric.ScoreAsync(new ImportanceRequest(f.InMemory, Samples, [], 0, 0));
            var streamed = await metric.ScoreAsync(new ImportanceRequest(f.Streamed, Samples, [], 0, 0));
            memory.Scores.Should().OnlyContain(s => s > 0);
            streamed.Scores.ShouldBeCloseTo(memory.Scores, Relative, metric.Name);
        }
    }

    [Fact]
    public async Task MagnitudeAndBlockInfluence_Streamed_EqualInMemory()
    {
        using var f = new StreamingFixture(seed: 7);
        foreach (IImportanceMetric metric in new IImportanceMetric[] { new MagnitudeMetric(), new BlockInfluenceMetric() })
        {
            var memory = await metric.ScoreAsync(new ImportanceRequest(f.InMemory, Samples, [], 0, 0));
            var streamed = await metric.ScoreAsync(new ImportanceRequest(f.Streamed, Samples, [], 0, 0));
            streamed.Scores.ShouldBeCloseTo(memory.Scores, Relative, metric.Name);
        }
    }

    [Theory]
    [MemberData(nameof(HeadChunks))]
    public async Task SkipEachLayer_Streamed_EqualsInMemoryLossWithThatLayerSkipped(long headChunk)
    {
        using var f = new StreamingFixture(seed: 9, headChunkBytes: headChunk);
        var sequences = Texts.Select(t => f.InMemory.Tokenize(t)).ToArray();
        var losses = f.Streamed.Engine.SkipEachLayer(sequences);
        var dense = await f.InMemory.ComputeLossAsync(sequences);
        var inMemoryOnePass = await f.InMemory.ComputeLayerSkipLossesAsync(sequences);
        var streamedOnePass = await f.Streamed.ComputeLayerSkipLossesAsync(sequences);
        streamedOnePass.ShouldBeCloseTo([losses.Dense, .. losses.Skipped], 1e-12);
        inMemoryOnePass.ShouldBeCloseTo(streamedOnePass, Relative);
        losses.Dense.Should().BeApproximately(dense, Relative * dense);
        for (int k = 0; k < f.InMemory.LayerCount; k++)
        {
            var expected = await f.InMemory.ComputeLossAsync(sequences, new HashSet<int> { k });
            losses.Skipped[k].Should().BeApproximately(expected, Relative * expected, $"layer {k} skipped");
            (await f.Streamed.ComputeLossAsync(sequences, new HashSet<int> { k })).Should().BeApproximately(expected, Relative * expected);
        }
    }

    [Theory]
    [InlineData(null)]
    [InlineData(5)]
    public void Perplexity_Streamed_EqualsInMemoryEvaluation(int? stride)
    {
        using var f = new StreamingFixture(seed: 11, headChunkBytes: StreamingFixture.SmallHeadChunk);
        var sequences = new[] { f.InMemory.Tokenize(string.Join(' ', Texts)), f.InMemory.Tokenize("short text") };
        var expected = Perplexity.EvaluateSequences(f.InMemory.Model, sequences, 12, stride);
        var actual = f.Streamed.Engine.Perplexity(sequences, 12, stride, maxBatchTokens: 30);
        actual.TokenCount.Should().Be(expected.TokenCount);
        actual.Windows.Should().Be(expected.Windows);
        actual.Nll.Should().BeApproximately(expected.Nll, Relative * expected.Nll);
    }

    [Fact]
    public async Task RemoveLayers_Streamed_ScoresEqualInMemoryModelWithoutThoseLayers()
    {
        using var f = new StreamingFixture(seed: 13, layers: 5);
        f.InMemory.RemoveLayers([1, 3]);
        f.Streamed.RemoveLayers([1, 3]);
        f.Streamed.OriginalLayerIndices.Should().Equal(0, 2, 4);
        f.Streamed.LayerCount.Should().Be(3);
        f.Streamed.ParameterCount.Should().Be(f.InMemory.ParameterCount);
        Enumerable.Range(0, 3).Select(f.Streamed.GetLayerParameterCount).Should().Equal(Enumerable.Range(0, 3).Select(f.InMemory.GetLayerParameterCount));
        var metric = new PerturbationImportanceMetric(TestNorm.L2);
        var memory = await metric.ScoreAsync(Request(f.InMemory, 0));
        var streamed = await metric.ScoreAsync(Request(f.Streamed, 0));
        streamed.Scores.ShouldBeCloseTo(memory.Scores, Relative);
    }

    [Fact]
    public void Save_AfterRemovingLayers_WritesFolderThatLoadsWithTheKeptWeights()
    {
        using var f = new StreamingFixture(seed: 15, layers: 4, stored: ScalarType.BFloat16);
        f.InMemory.RemoveLayers([0, 2]);
        f.Streamed.RemoveLayers([0, 2]);
        var output = f.Folder + "-out";
        try
        {
            f.Streamed.Save(output);
            using var reloaded = TorchCausalLM.Load(output, ScalarType.Float32);
            reloaded.LayerCount.Should().Be(2);
            TorchCausalLM.DtypeOf(reloaded.ModelConfig).Should().Be(ScalarType.BFloat16);
            File.Exists(Path.Combine(output, "tokenizer.json")).Should().BeTrue();
            var expected = f.InMemory.Model.NamedWeights();
            foreach (var (name, weight) in reloaded.Model.NamedWeights())
                Models.TinyModels.Same(weight, expected[name]).Should().BeTrue(name);
        }
        finally
        {
            if (Directory.Exists(output)) Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public async Task TiedEmbeddings_Streamed_EqualInMemory()
    {
        using var f = new StreamingFixture(seed: 17, tied: true, headChunkBytes: StreamingFixture.SmallHeadChunk);
        var metric = new PerturbationImportanceMetric(TestNorm.L2);
        var memory = await metric.ScoreAsync(Request(f.InMemory, 0));
        var streamed = await metric.ScoreAsync(Request(f.Streamed, 0));
        streamed.Scores.ShouldBeCloseTo(memory.Scores, Relative);
    }

    [Fact]
    public void Open_PickledCheckpoint_ThrowsFormatErrorNamingTheFile()
    {
        var folder = Path.Combine(Path.GetTempPath(), "pip-pickle-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            File.WriteAllText(Path.Combine(folder, "config.json"), "{}");
            File.WriteAllBytes(Path.Combine(folder, "pytorch_model.bin"), [0x80, 0x02]);
            var act = () => StreamedCausalLM.Open(folder);
            act.Should().Throw<CheckpointFormatException>().WithMessage("*pickled*");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task PertImport_Streamed_ReportsProgressPerLayerPhaseAndSet()
    {
        using var f = new StreamingFixture(seed: 6, layers: 3);
        var reports = new List<ScoringProgress>();
        await new PerturbationImportanceMetric(TestNorm.L2).ScoreAsync(Request(f.Streamed, 0, 1) with { Progress = new Synchronous<ScoringProgress>(reports.Add) });
        // Two sets, each one pass: 3 layers forward, the head, 3 layers backward.
        reports.Select(r => r.Completed).Should().Equal(Enumerable.Range(1, 14));
        reports.Should().OnlyContain(r => r.Total == 14 && r.Metric == "pip");
    }

    [Fact]
    public async Task Taylor_Streamed_ReportsForwardHeadAndBackwardSteps()
    {
        using var f = new StreamingFixture(seed: 6, layers: 3);
        var reports = new List<ScoringProgress>();
        await new TaylorMetric().ScoreAsync(Request(f.Streamed, 0) with { Progress = new Synchronous<ScoringProgress>(reports.Add) });
        reports.Select(r => r.Completed).Should().Equal(Enumerable.Range(1, 7));
        reports.Should().OnlyContain(r => r.Total == 7 && r.Metric == "taylor");
    }

    [Fact]
    public void Gradients_Cancelled_ThrowsBetweenLayers()
    {
        using var f = new StreamingFixture(seed: 19);
        using var cts = new CancellationTokenSource();
        var seen = new List<int>();
        var act = () => f.Streamed.Engine.Gradients(
            [LossCombination.Single(f.InMemory.Tokenize(Texts[0]))],
            g => { seen.Add(g.Layer); cts.Cancel(); },
            cancellationToken: cts.Token);
        act.Should().Throw<OperationCanceledException>();
        seen.Should().Equal(3);
    }

    [Fact]
    public void Gradients_ProgressAndOrder_ForwardHeadBackwardLastLayerFirst()
    {
        using var f = new StreamingFixture(seed: 21, layers: 3);
        var reports = new List<LayerPassProgress>();
        var order = new List<(int Layer, int Combination)>();
        var combinations = Texts.Select(t => LossCombination.Single(f.InMemory.Tokenize(t))).ToArray();
        var losses = f.Streamed.Engine.Gradients(combinations, g => order.Add((g.Layer, g.Combination)), progress: new Synchronous<LayerPassProgress>(reports.Add));
        order.Should().Equal((2, 0), (2, 1), (2, 2), (1, 0), (1, 1), (1, 2), (0, 0), (0, 1), (0, 2));
        reports.Select(r => (r.Phase, r.Step)).Should().Equal(
            (LayerPassPhase.Forward, 1), (LayerPassPhase.Forward, 2), (LayerPassPhase.Forward, 3), (LayerPassPhase.Head, 1),
            (LayerPassPhase.Backward, 1), (LayerPassPhase.Backward, 2), (LayerPassPhase.Backward, 3));
        losses.Should().HaveCount(3).And.OnlyContain(l => l.Count == 1 && l[0] > 0);
    }

    internal sealed class Synchronous<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
