using Pip.Torch.Pruning;
using static Pip.Torch.Tests.Pruning.PruningFixtures;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning;

public sealed class LayerwiseBackwardTests
{
    [Fact]
    public void Run_SumOfLosses_GivesEachLayersFullBackwardGradientsLastLayerFirst()
    {
        using var lm = Create(seed: 61);
        var tokens = new[] { lm.Tokenize("one two three"), lm.Tokenize("four five six") };
        tokens[0].Count.Should().Be(tokens[1].Count);
        var snapshot = Snapshot(lm.Module);

        var order = new List<int>();
        var actual = new double[3][];
        using (var scope = NewDisposeScope())
        {
            var ids = tensor(tokens.SelectMany(t => t).Select(i => (long)i).ToArray(), [2, tokens[0].Count]);
            LayerwiseBackward.Run(
                lm.Module,
                ids,
                logits => nn.functional.cross_entropy(logits[0, ..^1].to_type(ScalarType.Float32), ids[0, 1..])
                    + 2 * nn.functional.cross_entropy(logits[1, ..^1].to_type(ScalarType.Float32), ids[1, 1..]),
                (layer, parameters, gradients) =>
                {
                    order.Add(layer);
                    parameters.Should().HaveCount(gradients.Count);
                    parameters.Select(p => p.Handle).Should().Equal(lm.Module.Layers[layer].parameters().Select(p => p.Handle));
                    for (int i = 0; i < gradients.Count; i++) gradients[i].shape.Should().Equal(parameters[i].shape);
                    actual[layer] = gradients.SelectMany(g => g.to_type(ScalarType.Float64).flatten().data<double>().ToArray()).ToArray();
                },
                CancellationToken.None);
        }

        order.Should().Equal(2, 1, 0);
        var g0 = LayerGradients(lm.Module, tokens[0]);
        var g1 = LayerGradients(lm.Module, tokens[1]);
        for (int l = 0; l < 3; l++)
        {
            var expected = g0[l].Select((v, i) => v + 2 * g1[l][i]).ToArray();
            actual[l].ShouldBeCloseTo(expected, 1e-3, $"layer {l}");
            double scale = TestNorm.L2.Of(expected);
            TestNorm.L2.Of(Subtract(actual[l], expected)).Should().BeLessThan(1e-5 * scale, $"layer {l}");
        }

        lm.Module.ShouldHaveNoGradients();
        lm.Module.ShouldEqual(snapshot);
    }

    [Fact]
    public void Run_ParametersWithStaleGrad_LeavesThemUntouched()
    {
        // A caller's own .grad (from an earlier plain backward) is neither accumulated into nor cleared.
        using var lm = Create(seed: 62);
        var ids = lm.Tokenize("stale gradients");
        using var scope = NewDisposeScope();
        var input = tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Count]);
        lm.Module.Logits(input).sum().backward();
        var before = lm.Module.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());

        LayerwiseBackward.Run(lm.Module, input, logits => logits.pow(2).mean(), (_, _, _) => { }, CancellationToken.None);

        foreach (var (name, p) in lm.Module.named_parameters())
        {
            using var g = p.grad;
            Models.TinyModels.Same(g!, before[name]).Should().BeTrue(name);
        }

        lm.Module.zero_grad();
    }

    [Fact]
    public void Run_Cancelled_ThrowsAndLeavesNoGradient()
    {
        using var lm = Create(seed: 63);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 0, 5, 6, 7 }, [1, 4]);
        int calls = 0;
        var act = () => LayerwiseBackward.Run(lm.Module, ids, l => l.sum(), (_, _, _) => calls++, cts.Token);
        act.Should().Throw<OperationCanceledException>();
        calls.Should().Be(0);
        lm.Module.ShouldHaveNoGradients();
    }

    [Fact]
    public void Run_CancelledBetweenLayers_StopsAndLeavesNoGradient()
    {
        using var lm = Create(seed: 64);
        using var cts = new CancellationTokenSource();
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 0, 5, 6, 7 }, [1, 4]);
        var seen = new List<int>();
        var act = () => LayerwiseBackward.Run(lm.Module, ids, l => l.sum(), (layer, _, _) => { seen.Add(layer); cts.Cancel(); }, cts.Token);
        act.Should().Throw<OperationCanceledException>();
        seen.Should().Equal(2);
        lm.Module.ShouldHaveNoGradients();
    }

    [Theory]
    [InlineData(1, 100000.0)]
    [InlineData(2, 316.22776601683796)]
    [InlineData(double.PositiveInfinity, 1.0)]
    public void Norm_LargeBFloat16Tensor_AccumulatesInFloat32(double order, double expected)
    {
        // 100 000 ones: a bfloat16 accumulator would stall at 256.
        using var ones = TorchSharp.torch.ones(100000, dtype: ScalarType.BFloat16);
        LayerwiseBackward.Norm(ones, order).Should().BeApproximately(expected, 1e-6 * expected);
    }

    [Fact]
    public void Norm_Float32Vector_EqualsHandNorms()
    {
        var values = new[] { 3f, -4f, 0.5f, -12f };
        using var t = tensor(values);
        LayerwiseBackward.Norm(t, 1).Should().BeApproximately(19.5, 1e-6);
        LayerwiseBackward.Norm(t, 2).Should().BeApproximately(Math.Sqrt(9 + 16 + 0.25 + 144), 1e-5);
        LayerwiseBackward.Norm(t, double.PositiveInfinity).Should().Be(12);
    }
}
