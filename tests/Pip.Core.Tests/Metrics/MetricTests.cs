namespace Pip.Tests.Metrics;

public class MetricTests
{
    private static ImportanceRequest Request(IPrunableModel model, int seed = 1, IProgress<ScoringProgress>? progress = null) =>
        new(model, Texts.Samples(2), [], 0, seed, progress);

    [Fact]
    public async Task RandomMetric_SameSeed_SameScores_OtherSeed_OtherScores()
    {
        var metric = new RandomMetric();
        var model = new FakeModel(8);

        LayerScores a = await metric.ScoreAsync(Request(model, 5));
        LayerScores b = await metric.ScoreAsync(Request(model, 5));
        LayerScores c = await metric.ScoreAsync(Request(model, 6));

        a.Scores.Should().HaveCount(8).And.OnlyContain(s => s >= 0 && s < 1);
        b.Scores.Should().Equal(a.Scores);
        c.Scores.Should().NotEqual(a.Scores);
        metric.UsesPerturbations.Should().BeFalse();
        metric.Name.Should().Be("random");
    }

    [Fact]
    public async Task PerplexityDrop_ScoresAreLossIncreaseWhenSkipped()
    {
        double[] importance = [0.5, 0.1, 2.0, 0.3];
        var model = new FakeModel(4, importance: importance);
        var progress = new ListProgress<ScoringProgress>();
        var metric = new PerplexityDropMetric(new PerplexityDropMetricOptions());

        LayerScores scores = await metric.ScoreAsync(Request(model, progress: progress));

        scores.Scores.Should().Equal(importance.Select(i => (object)i).Cast<double>(), (x, y) => Math.Abs(x - y) < 1e-12);
        model.LossCalls.Should().Be(5);
        progress.Items.Select(p => p.Completed).Should().Equal(1, 2, 3, 4, 5);
        progress.Items.Should().OnlyContain(p => p.Total == 5 && p.Metric == "perplexity-drop");
    }

    [Fact]
    public async Task PerplexityDrop_ModelWithOnePassSkipLosses_UsesItInsteadOfOneLossPerLayer()
    {
        var model = new OnePassModel(new FakeModel(3, importance: [0.5, 0.1, 2.0]), [1.0, 1.7, 1.2, 3.5]);
        var progress = new ListProgress<ScoringProgress>();
        var metric = new PerplexityDropMetric(new PerplexityDropMetricOptions());

        LayerScores scores = await metric.ScoreAsync(Request(model, progress: progress));

        scores.Scores.Should().Equal([0.7, 0.2, 2.5], (x, y) => Math.Abs(x - y) < 1e-12);
        model.Calls.Should().Be(1);
        model.Inner.LossCalls.Should().Be(0);
        progress.Items.Select(p => (p.Completed, p.Total)).Should().Equal((4, 4));
    }

    [Fact]
    public async Task PerplexityDrop_Iterative_IsSlebOrderOnFakeModel()
    {
        double[] importance = [0.5, 0.1, 2.0, 0.3, 0.05, 1.0];
        var model = new FakeModel(6, importance: importance);
        PruningPipeline pipeline = new PipelineBuilder().UsePerplexityDropMetric().Configure(o => o.Target = PruningTarget.LayerCount(3)).Build();

        PruningReport report = await pipeline.RunAsync(model, Texts.Samples(1));

        report.RemovedOriginalLayers.Should().Equal(4, 1, 3);
        report.Settings.Metric.Should().Be("perplexity-drop");
    }

    [Fact]
    public async Task PerplexityDrop_Cancelled_Throws()
    {
        var metric = new PerplexityDropMetric(new PerplexityDropMetricOptions());

        Func<Task> act = async () => await metric.ScoreAsync(Request(new FakeModel(3)), new CancellationToken(true));

        await act.Should().ThrowAsync<OperationCanceledException>();
    }

    private sealed class OnePassModel(FakeModel inner, double[] losses) : IPrunableModel, ILayerSkipLossModel
    {
        public FakeModel Inner => inner;

        public int Calls { get; private set; }

        public string Architecture => inner.Architecture;

        public int LayerCount => inner.LayerCount;

        public long ParameterCount => inner.ParameterCount;

        public IReadOnlyList<int> OriginalLayerIndices => inner.OriginalLayerIndices;

        public long GetLayerParameterCount(int layer) => inner.GetLayerParameterCount(layer);

        public IReadOnlyList<int> Tokenize(string text) => inner.Tokenize(text);

        public ValueTask<double> ComputeLossAsync(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlySet<int>? skipLayers = null, CancellationToken cancellationToken = default) =>
            inner.ComputeLossAsync(sequences, skipLayers, cancellationToken);

        public void RemoveLayers(IReadOnlyCollection<int> layers) => inner.RemoveLayers(layers);

        public ValueTask<IReadOnlyList<double>> ComputeLayerSkipLossesAsync(IReadOnlyList<IReadOnlyList<int>> sequences, CancellationToken cancellationToken = default)
        {
            Calls++;
            return ValueTask.FromResult<IReadOnlyList<double>>(losses);
        }
    }
}
