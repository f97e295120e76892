using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using Pip.Torch.Tests.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning.Width;

/// <summary>The width pipeline, the width metrics and <see cref="IWidthPrunableModel"/> on OPT models (one head per unit, fc1/fc2 channels).</summary>
public sealed class OptWidthPipelineTests
{
    private const int Hidden = 32, HeadDim = 8;

    private static TorchCausalLM Model(long seed, bool bias = true) =>
        new(TinyOptModels.Random(TinyOptModels.Config(layers: 3, bias: bias, vocab: 258), seed), PruningFixtures.Tokenizer);

    [Theory]
    [InlineData("taylor", WidthAllocation.Uniform)]
    [InlineData("flap", WidthAllocation.Adaptive)]
    [InlineData("wanda-sp", WidthAllocation.Uniform)]
    [InlineData("magnitude", WidthAllocation.Uniform)]
    public async Task RunAsync_OptModel_PrunesHeadsAndChannelsConsistentlyAndReloadsWithTheSameLogits(string metric, WidthAllocation allocation)
    {
        using var model = Model(seed: 31);
        long before = model.ParameterCount;
        var pipeline = new WidthPipelineBuilder()
            .Configure(o => o.Target = PruningTarget.Ratio(0.2))
            .ConfigureWidth(o => { o.LayerStart = 0; o.LayerEnd = 3; o.Allocation = allocation; })
            .UseWidthMetric(metric)
            .Build();

        var report = await pipeline.RunAsync(model, PruningFixtures.Samples);

        long removed = before - model.ParameterCount;
        removed.Should().BeGreaterThan(0);
        removed.Should().BeLessThanOrEqualTo((long)(0.2 * before));
        report.FinalParameterCount.Should().Be(model.ParameterCount);
        var opt = (OptForCausalLM)model.Model;
        var config = (OptConfig)model.ModelConfig;
        var width = report.Rounds[0].Width!;
        for (int l = 0; l < model.LayerCount; l++)
        {
            var layer = opt.Layers[l];
            var shape = config.ShapeOf(l);
            layer.SelfAttn.QProj.weight!.shape.Should().Equal(shape.NumAttentionHeads * HeadDim, Hidden);
            layer.SelfAttn.KProj.weight!.shape.Should().Equal(shape.NumAttentionHeads * HeadDim, Hidden);
            layer.SelfAttn.VProj.weight!.shape.Should().Equal(shape.NumAttentionHeads * HeadDim, Hidden);
            layer.SelfAttn.OutProj.weight!.shape.Should().Equal(Hidden, shape.NumAttentionHeads * HeadDim);
            layer.Fc2.weight!.shape.Should().Equal(Hidden, shape.FfnDim);
            (width.Layers[l].HeadsAfter, width.Layers[l].ChannelsAfter).Should().Be((shape.NumAttentionHeads, shape.FfnDim));
        }

        width.Layers.Sum(r => r.RemovedHeads.Count + r.RemovedChannels.Count).Should().BeGreaterThan(0);
        ShouldReloadWithSameLogits(model);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void GetUnitParameterCount_OptModel_EqualsTheParametersOneUnitRemoves(bool bias)
    {
        foreach (var kind in new[] { WidthUnitKind.Heads, WidthUnitKind.Channels })
        {
            using var model = Model(seed: 32, bias: bias);
            long perUnit = model.GetUnitParameterCount(1, kind);
            // Heads: q/k/v rows and out_proj columns of width 8, plus 3·8 q/k/v bias entries; channels: an fc1 row and an fc2 column, plus one fc1 bias entry.
            perUnit.Should().Be(kind == WidthUnitKind.Heads ? 4 * HeadDim * Hidden + (bias ? 3 * HeadDim : 0) : 2 * Hidden + (bias ? 1 : 0));
            model.GetUnitCount(1, kind).Should().Be(kind == WidthUnitKind.Heads ? 4 : 48);
            long before = model.ParameterCount;
            var units = new Dictionary<int, IReadOnlyCollection<int>> { [1] = [0, 2] };

            model.RemoveUnits(kind == WidthUnitKind.Heads ? new WidthRemovalPlan { Heads = units } : new WidthRemovalPlan { Channels = units });

            (before - model.ParameterCount).Should().Be(2 * perUnit);
            model.GetUnitCount(1, kind).Should().Be(kind == WidthUnitKind.Heads ? 2 : 46);
        }
    }

    [Fact]
    public async Task ScoreAsync_MagnitudeOnOpt_SumsSquaredWeightsOfEachHeadAndChannel()
    {
        using var model = Model(seed: 33);
        var metric = new MagnitudeWidthMetric(new WidthMetricOptions { GroupReduction = WidthGroupReduction.Sum });

        var scores = await metric.ScoreAsync(WidthReference.Request(model, WidthUnits.Both, 0, 2));

        var opt = (OptForCausalLM)model.Model;
        foreach (int l in new[] { 0, 2 })
        {
            var layer = opt.Layers[l];
            double Rows(Linear p, int from, int count) => Square(p, (i, _) => i >= from && i < from + count);
            double Columns(Linear p, int from, int count) => Square(p, (_, j) => j >= from && j < from + count);
            var heads = Enumerable.Range(0, 4).Select(h =>
                Rows(layer.SelfAttn.QProj, h * HeadDim, HeadDim) + Rows(layer.SelfAttn.KProj, h * HeadDim, HeadDim) +
                Rows(layer.SelfAttn.VProj, h * HeadDim, HeadDim) + Columns(layer.SelfAttn.OutProj, h * HeadDim, HeadDim)).ToArray();
            var channels = Enumerable.Range(0, 48).Select(c => Rows(layer.Fc1, c, 1) + Columns(layer.Fc2, c, 1)).ToArray();
            scores.Heads![l].ShouldMatch(heads, 1e-5, $"(heads, layer {l})");
            scores.Channels![l].ShouldMatch(channels, 1e-5, $"(channels, layer {l})");
        }

        scores.Heads![1].Should().BeEmpty();
    }

    [Fact]
    public async Task RunAsync_FlapWithBiasCompensationOnOpt_AddsTheMeanContributionToTheExistingBiasesAndReloads()
    {
        using var model = Model(seed: 34);
        var opt = (OptForCausalLM)model.Model;
        var means = InputMeans(model);
        var before = opt.Layers.Select(layer => new[] { layer.SelfAttn.OutProj, layer.Fc2 }
            .Select(p => (W: WidthReference.ToArray(p.weight!), Bias: Vector(p.bias!), Mean: means[p.weight!.Handle])).ToArray()).ToArray();
        long parametersBefore = model.ParameterCount;
        var pipeline = new WidthPipelineBuilder()
            .Configure(o => o.Target = PruningTarget.Ratio(0.2))
            .ConfigureWidth(o => { o.LayerStart = 0; o.LayerEnd = 3; o.Allocation = WidthAllocation.Adaptive; o.BiasCompensation = true; })
            .UseWidthMetric("flap")
            .Build();

        var report = await pipeline.RunAsync(model, PruningFixtures.Samples);

        report.Rounds[0].Width!.BiasCompensation.Should().BeTrue();
        int compensated = 0;
        long unitParameters = 0;
        for (int l = 0; l < 3; l++)
        {
            var record = report.Rounds[0].Width!.Layers[l];
            unitParameters += record.RemovedHeads.Count * (4 * HeadDim * Hidden + 3 * HeadDim) + record.RemovedChannels.Count * (2 * Hidden + 1);
            foreach (var (removedUnits, width, source, bias) in new[]
            {
                (record.RemovedHeads, HeadDim, before[l][0], opt.Layers[l].SelfAttn.OutProj.bias!),
                (record.RemovedChannels, 1, before[l][1], opt.Layers[l].Fc2.bias!),
            })
            {
                var columns = removedUnits.SelectMany(u => Enumerable.Range(u * width, width)).ToArray();
                var expected = Enumerable.Range(0, Hidden).Select(i => source.Bias[i] + columns.Sum(j => source.W[i, j] * source.Mean[j])).ToArray();
                Vector(bias).ShouldMatch(expected, 1e-4, $"(bias of layer {l})");
                compensated += columns.Length;
            }
        }

        compensated.Should().BeGreaterThan(0);
        (parametersBefore - model.ParameterCount).Should().Be(unitParameters, "OPT's existing biases carry the compensation: nothing is added");
        report.FinalParameterCount.Should().Be(model.ParameterCount);
        ShouldReloadWithSameLogits(model);
    }

    [Fact]
    public async Task RunAsync_BiasCompensationOnOptWithoutBiases_ThrowsBeforeChangingTheModel()
    {
        using var model = Model(seed: 35, bias: false);
        var snapshot = model.Model.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var pipeline = new WidthPipelineBuilder().ConfigureWidth(o => o.BiasCompensation = true).UseWidthMetric("flap").Build();

        await FluentActions.Awaiting(() => pipeline.RunAsync(model, PruningFixtures.Samples)).Should().ThrowAsync<ArgumentException>().WithMessage("*enable_bias*out_proj*");
        model.GetBiasCompensationObstacle(WidthUnitKind.Channels).Should().Contain("fc2");
        var now = model.Model.NamedWeights();
        now.Keys.Should().BeEquivalentTo(snapshot.Keys);
        foreach (var (name, p) in now) TinyModels.Same(p.detach(), snapshot[name]).Should().BeTrue($"{name} must be unchanged");
    }

    /// <summary>The mean over all calibration tokens of each input of every out_proj and fc2, from forward hooks on whole-model passes.</summary>
    private static Dictionary<IntPtr, double[]> InputMeans(TorchCausalLM model)
    {
        var opt = (OptForCausalLM)model.Model;
        var rows = new Dictionary<IntPtr, List<double[]>>();
        var hooks = opt.Layers.SelectMany(l => new[] { l.SelfAttn.OutProj, l.Fc2 }).Select(linear =>
        {
            rows[linear.weight!.Handle] = [];
            return linear.register_forward_hook((_, input, output) =>
            {
                var m = WidthReference.ToArray(input.reshape(-1, input.shape[^1]));
                for (int t = 0; t < m.GetLength(0); t++) rows[linear.weight!.Handle].Add([.. Enumerable.Range(0, m.GetLength(1)).Select(j => m[t, j])]);
                return output;
            });
        }).ToArray();
        try
        {
            using var noGrad = no_grad();
            foreach (var sequence in WidthReference.Sequences(model))
            {
                using var scope = NewDisposeScope();
                opt.Logits(TinyModels.Ids(sequence));
            }
        }
        finally
        {
            foreach (var hook in hooks) hook.remove();
        }

        return rows.ToDictionary(kv => kv.Key, kv => Enumerable.Range(0, kv.Value[0].Length).Select(j => kv.Value.Average(r => r[j])).ToArray());
    }

    private static double Square(Linear p, Func<int, int, bool> include)
    {
        var w = WidthReference.ToArray(p.weight!);
        double sum = 0;
        for (int i = 0; i < w.GetLength(0); i++) for (int j = 0; j < w.GetLength(1); j++) if (include(i, j)) sum += w[i, j] * w[i, j];
        return sum;
    }

    private static double[] Vector(Tensor t)
    {
        using var d = t.detach().to_type(ScalarType.Float64).cpu();
        return d.data<double>().ToArray();
    }

    private static void ShouldReloadWithSameLogits(TorchCausalLM model)
    {
        var folder = Path.Combine(Path.GetTempPath(), "pip-opt-width-" + Guid.NewGuid().ToString("N"));
        try
        {
            model.Save(folder);
            using var reloaded = TorchCausalLM.Load(folder);
            reloaded.Model.Should().BeOfType<OptForCausalLM>();
            var config = (OptConfig)model.ModelConfig;
            var loadedConfig = (OptConfig)reloaded.ModelConfig;
            Enumerable.Range(0, model.LayerCount).Select(loadedConfig.ShapeOf).Should().Equal(Enumerable.Range(0, model.LayerCount).Select(config.ShapeOf));
            reloaded.ParameterCount.Should().Be(model.ParameterCount);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var ids = TinyModels.Ids(WidthReference.Sequences(model)[1]);
            TinyModels.MaxAbsDiff(reloaded.Model.Logits(ids), model.Model.Logits(ids)).Should().Be(0);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
