using Pip.Checkpoints;
using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Models;

public sealed class RotaryEmbeddingTests
{
    [Fact]
    public void InverseFrequencies_Llama31Config_MatchDoubleFormulaInFloat32()
    {
        // The Llama 3.1 8B values: theta 500000, head_dim 128, llama3 scaling factor 8, 1, 4, 8192.
        var config = TinyModels.Config() with
        {
            HiddenSize = 4096, NumAttentionHeads = 32, NumKeyValueHeads = 8, HeadDim = 128, RopeTheta = 500000,
            RopeScaling = new RopeScaling("llama3", 8, 1, 4, 8192),
        };
        var expected = ScalarLlamaReference.InverseFrequencies(config);
        var actual = new RotaryEmbedding(config).InverseFrequencies;
        actual.Should().HaveCount(64);
        for (var i = 0; i < 64; i++) ((double)actual[i]).Should().BeApproximately(expected[i], 2e-6 * expected[i], $"index {i}");
        // All three regimes occur: unchanged, smoothed and divided.
        var unscaled = ScalarLlamaReference.InverseFrequencies(config with { RopeScaling = null });
        expected.Zip(unscaled).Count(p => p.First == p.Second).Should().BeGreaterThan(0);
        expected.Zip(unscaled).Count(p => Math.Abs(p.First * 8 - p.Second) < 1e-12 * p.Second).Should().BeGreaterThan(0);
        expected.Zip(unscaled).Count(p => p.First != p.Second && Math.Abs(p.First * 8 - p.Second) >= 1e-12 * p.Second).Should().BeGreaterThan(0);
    }

    [Fact]
    public void Compute_Positions_GiveCosSinOfPositionTimesFrequencyRepeatedTwice()
    {
        var rotary = new RotaryEmbedding(TinyModels.Config());
        using var scope = NewDisposeScope();
        using var cache = rotary.Compute(tensor(new long[] { 0, 3, 7 }, new long[] { 1, 3 }), ScalarType.Float32);
        cache.Cos.shape.Should().Equal(1, 3, 8);
        var cos = cache.Cos.data<float>().ToArray();
        var sin = cache.Sin.data<float>().ToArray();
        var positions = new[] { 0, 3, 7 };
        for (var p = 0; p < 3; p++)
            for (var i = 0; i < 8; i++)
            {
                var angle = positions[p] * Math.Pow(10000, -2.0 * (i % 4) / 8);
                ((double)cos[p * 8 + i]).Should().BeApproximately(Math.Cos(angle), 1e-6);
                ((double)sin[p * 8 + i]).Should().BeApproximately(Math.Sin(angle), 1e-6);
            }
    }
}
