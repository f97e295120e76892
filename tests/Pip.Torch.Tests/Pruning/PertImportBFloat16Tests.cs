using Pip.Torch.Models;
using Pip.Torch.Pruning;
using Pip.Torch.Tests.Models;
using Xunit.Abstractions;
using static Pip.Torch.Tests.Pruning.PruningFixtures;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning;

public sealed class PertImportBFloat16Tests(ITestOutputHelper output)
{
    /// <summary>
    /// The same weights (bfloat16 values) in a bfloat16 model and a float32 model; layer 1's projections are scaled
    /// down so that it matters clearly less than the others.
    /// </summary>
    private static (TorchCausalLM Bf16, TorchCausalLM Fp32) Pair()
    {
        using var source = TinyModels.Random(Config(layers: 4), 91);
        using (no_grad())
        {
            foreach (var (name, p) in source.Layers[1].named_parameters())
            {
                if (name.EndsWith("proj.weight", StringComparison.Ordinal)) p.mul_(0.3);
            }
        }

        var bf16 = new LlamaForCausalLM(source.Config, ScalarType.BFloat16);
        bf16.LoadWeights(source.NamedWeights());
        var fp32 = new LlamaForCausalLM(source.Config, ScalarType.Float32);
        fp32.LoadWeights(bf16.NamedWeights());
        return (new TorchCausalLM(bf16, Tokenizer), new TorchCausalLM(fp32, Tokenizer));
    }

    [Theory]
    [MemberData(nameof(TestNorm.Names), MemberType = typeof(TestNorm))]
    public async Task PertImport_BFloat16Model_ScoresCloseToFloat32AndSameLowestLayer(string normName)
    {
        var norm = TestNorm.ByName(normName);
        var (bf16, fp32) = Pair();
        using var a = bf16;
        using var b = fp32;
        var low = await new PerturbationImportanceMetric(norm).ScoreAsync(Request(a, 0, 1));
        var high = await new PerturbationImportanceMetric(norm).ScoreAsync(Request(b, 0, 1));
        output.WriteLine($"bf16 {string.Join(", ", low.Scores.Select(s => s.ToString("E4")))}");
        output.WriteLine($"fp32 {string.Join(", ", high.Scores.Select(s => s.ToString("E4")))}");

        a.Module.Dtype.Should().Be(ScalarType.BFloat16);
        // Observed: at most 1.1 % (L1, L2) and 3 % (L∞) relative difference per layer.
        low.Scores.ShouldBeCloseTo(high.Scores, 0.05, "bfloat16 vs float32");
        for (int set = 0; set < 2; set++) low.PerPerturbationSet![set].ShouldBeCloseTo(high.PerPerturbationSet![set], 0.08, $"set {set}");
        Ranking(low.Scores).Should().Equal(Ranking(high.Scores));
        Ranking(high.Scores)[0].Should().Be(1, "layer 1 was scaled down");
    }

    private static int[] Ranking(IReadOnlyList<double> scores) => Enumerable.Range(0, scores.Count).OrderBy(l => scores[l]).ToArray();
}
