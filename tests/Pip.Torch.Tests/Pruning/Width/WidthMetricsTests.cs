using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;

namespace Pip.Torch.Tests.Pruning.Width;

public sealed class WidthMetricsTests
{
    private const double Relative = 2e-3;

    public static TheoryData<TaylorWidthOrder, WidthGroupReduction> TaylorCases => new()
    {
        { TaylorWidthOrder.First, WidthGroupReduction.Sum },
        { TaylorWidthOrder.First, WidthGroupReduction.Max },
        { TaylorWidthOrder.Second, WidthGroupReduction.Sum },
        { TaylorWidthOrder.Mix, WidthGroupReduction.Mean },
        { TaylorWidthOrder.Vector, WidthGroupReduction.Product },
    };

    [Theory]
    [MemberData(nameof(TaylorCases))]
    public async Task Taylor_EveryOrder_MatchesHandComputationFromAFullBackwardPass(TaylorWidthOrder order, WidthGroupReduction reduction)
    {
        using var model = WidthReference.Model(seed: 11);
        var sequences = WidthReference.Sequences(model);
        var g = WidthReference.Gradients(model.Module, sequences);
        var f = WidthReference.Fisher(model.Module, sequences);
        var metric = new TaylorWidthMetric(order, new WidthMetricOptions { GroupReduction = reduction });
        var snapshot = PruningFixtures.Snapshot(model.Module);

        var scores = await metric.ScoreAsync(WidthReference.Request(model));

        foreach (var kind in new[] { WidthUnitKind.Heads, WidthUnitKind.Channels })
        {
            for (int l = 0; l < model.LayerCount; l++)
            {
                var layer = model.Module.Layers[l];
                int units = model.GetUnitCount(l, kind);
                var parts = WidthReference.Parts(layer, kind).Select(p =>
                {
                    var w = WidthReference.ToArray(p.Linear.weight!);
                    var grad = g[p.Linear.weight!.Handle];
                    var fisher = f[p.Linear.weight!.Handle];
                    Func<int, int, double> salience = order switch
                    {
                        TaylorWidthOrder.Second => (i, j) => 0.5 * w[i, j] * w[i, j] * fisher[i, j],
                        TaylorWidthOrder.Mix => (i, j) => w[i, j] * grad[i, j] - 0.5 * w[i, j] * w[i, j] * fisher[i, j],
                        _ => (i, j) => w[i, j] * grad[i, j],
                    };
                    return WidthReference.UnitSums(w.GetLength(0), w.GetLength(1), salience, p.Rows, units, order == TaylorWidthOrder.Vector);
                }).ToArray();
                var expected = WidthReference.Reduce(parts, reduction);
                scores.Of(kind)![l].ShouldMatch(expected, reduction == WidthGroupReduction.Product ? 1e-3 : Relative, $"({kind}, layer {l})");
            }
        }

        model.Module.ShouldEqual(snapshot);
        model.Module.ShouldHaveNoGradients();
        metric.Name.Should().Be(order switch
        {
            TaylorWidthOrder.First => "taylor",
            TaylorWidthOrder.Second => "taylor-second",
            TaylorWidthOrder.Mix => "taylor-mix",
            _ => "taylor-vector",
        });
    }

    [Theory]
    [InlineData(WidthGroupReduction.Sum)]
    [InlineData(WidthGroupReduction.Max)]
    public async Task WandaSp_MatchesWeightTimesInputNormFromAHandWrittenForwardPass(WidthGroupReduction reduction)
    {
        using var model = WidthReference.Model(seed: 12);
        var inputs = WidthReference.ProjectionInputs(model.Module, WidthReference.Sequences(model));

        var scores = await new WandaSpWidthMetric(new WidthMetricOptions { GroupReduction = reduction }).ScoreAsync(WidthReference.Request(model));

        foreach (var kind in new[] { WidthUnitKind.Heads, WidthUnitKind.Channels })
        {
            for (int l = 0; l < model.LayerCount; l++)
            {
                var parts = WidthReference.Parts(model.Module.Layers[l], kind).Select(p =>
                {
                    var w = WidthReference.ToArray(p.Linear.weight!);
                    var x = inputs[p.Linear.weight!.Handle];
                    var norm = Enumerable.Range(0, w.GetLength(1)).Select(j => Math.Sqrt(x.Sum(row => row[j] * row[j]))).ToArray();
                    return WidthReference.UnitSums(w.GetLength(0), w.GetLength(1), (i, j) => Math.Abs(w[i, j]) * norm[j], p.Rows, model.GetUnitCount(l, kind), false);
                }).ToArray();
                scores.Of(kind)![l].ShouldMatch(WidthReference.Reduce(parts, reduction), 1e-4, $"({kind}, layer {l})");
            }
        }
    }

    [Fact]
    public async Task Flap_MatchesInputVarianceTimesColumnNormAndGivesTheInputMeans()
    {
        using var model = WidthReference.Model(seed: 13);
        var inputs = WidthReference.ProjectionInputs(model.Module, WidthReference.Sequences(model));

        var scores = await new FlapWidthMetric().ScoreAsync(WidthReference.Request(model, WidthUnits.Both, 1, 2));

        scores.Heads![0].Should().BeEmpty("layer 0 was not asked for");
        scores.HeadInputMeans![0].Should().BeEmpty();
        foreach (var kind in new[] { WidthUnitKind.Heads, WidthUnitKind.Channels })
        {
            for (int l = 1; l < 3; l++)
            {
                var layer = model.Module.Layers[l];
                var linear = kind == WidthUnitKind.Heads ? layer.SelfAttn.OProj : layer.Mlp.DownProj;
                var w = WidthReference.ToArray(linear.weight!);
                var x = inputs[linear.weight!.Handle];
                int n = x.Count;
                var mean = Enumerable.Range(0, w.GetLength(1)).Select(j => x.Average(row => row[j])).ToArray();
                var variance = Enumerable.Range(0, w.GetLength(1)).Select(j => x.Sum(row => (row[j] - mean[j]) * (row[j] - mean[j])) / (n - 1)).ToArray();
                var expected = WidthReference.UnitSums(w.GetLength(0), w.GetLength(1), (i, j) => w[i, j] * w[i, j] * variance[j], false, model.GetUnitCount(l, kind), false);

                scores.Of(kind)![l].ShouldMatch(expected, 1e-4, $"({kind}, layer {l})");
                var means = kind == WidthUnitKind.Heads ? scores.HeadInputMeans![l] : scores.ChannelInputMeans![l];
                means.ShouldMatch(mean, 1e-4, $"(means of {kind}, layer {l})");
            }
        }
    }

    [Theory]
    [InlineData(WidthGroupReduction.Sum)]
    [InlineData(WidthGroupReduction.Mean)]
    [InlineData(WidthGroupReduction.Product)]
    public async Task Magnitude_IsTheReducedSquaredNormOfEachPart(WidthGroupReduction reduction)
    {
        using var model = WidthReference.Model(seed: 14);

        var scores = await new MagnitudeWidthMetric(new WidthMetricOptions { GroupReduction = reduction }).ScoreAsync(WidthReference.Request(model, WidthUnits.Heads));

        scores.Channels.Should().BeNull("channels were not asked for");
        for (int l = 0; l < model.LayerCount; l++)
        {
            var parts = WidthReference.Parts(model.Module.Layers[l], WidthUnitKind.Heads).Select(p =>
            {
                var w = WidthReference.ToArray(p.Linear.weight!);
                return WidthReference.UnitSums(w.GetLength(0), w.GetLength(1), (i, j) => w[i, j] * w[i, j], p.Rows, 3, false);
            }).ToArray();
            scores.Heads![l].ShouldMatch(WidthReference.Reduce(parts, reduction), 1e-5, $"(layer {l})");
        }
    }

    [Fact]
    public async Task Magnitude_GroupOfGqa_SpansTheQueryHeadsThatShareTheKeyValueHead()
    {
        // Zero the q rows and o columns of query heads 2 and 3 (group 1 of G = 2) and k/v rows of head 1: only group 1 scores 0.
        using var model = WidthReference.Model(seed: 15);
        var a = model.Module.Layers[0].SelfAttn;
        using (TorchSharp.torch.no_grad())
        {
            a.QProj.weight!.narrow(0, 16, 16).zero_();
            a.KProj.weight!.narrow(0, 8, 8).zero_();
            a.VProj.weight!.narrow(0, 8, 8).zero_();
            a.OProj.weight!.narrow(1, 16, 16).zero_();
        }

        var scores = await new MagnitudeWidthMetric().ScoreAsync(WidthReference.Request(model, WidthUnits.Heads, 0));

        scores.Heads![0][1].Should().Be(0);
        scores.Heads[0][0].Should().BeGreaterThan(0);
        scores.Heads[0][2].Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task Metrics_GivenADepthOnlyModel_ThrowNotSupported()
    {
        var request = new WidthImportanceRequest(new NotTorch(), PruningFixtures.Samples, WidthUnits.Both, [0], 1);
        foreach (var name in TorchWidthMetrics.Names)
        {
            await FluentActions.Awaiting(() => TorchWidthMetrics.Create(name).ScoreAsync(request).AsTask())
                .Should().ThrowAsync<NotSupportedException>().WithMessage($"*{name}*TorchCausalLM*");
        }
    }

    private sealed class NotTorch : IWidthPrunableModel
    {
        public string Architecture => "X";
        public int LayerCount => 1;
        public long ParameterCount => 1;
        public IReadOnlyList<int> OriginalLayerIndices => [0];
        public long GetLayerParameterCount(int layer) => 1;
        public IReadOnlyList<int> Tokenize(string text) => [1, 2];
        public ValueTask<double> ComputeLossAsync(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlySet<int>? skipLayers = null, CancellationToken cancellationToken = default) => ValueTask.FromResult(1.0);
        public void RemoveLayers(IReadOnlyCollection<int> layers) { }
        public int GetUnitCount(int layer, WidthUnitKind kind) => 2;
        public long GetUnitParameterCount(int layer, WidthUnitKind kind) => 1;
        public string? GetBiasCompensationObstacle(WidthUnitKind kind) => null;
        public void RemoveUnits(WidthRemovalPlan plan) { }
    }
}
