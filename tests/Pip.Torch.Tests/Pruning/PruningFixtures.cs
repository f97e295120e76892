using Pip.Checkpoints;
using Pip.Tokenization;
using Pip.Torch.Models;
using Pip.Torch.Tests.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning;

/// <summary>A plain L1/L2/L∞ norm for the tests (independent of Pip.Core's implementations).</summary>
internal sealed class TestNorm : INormAggregator
{
    private TestNorm(string name, double order)
    {
        Name = name;
        Order = order;
    }

    public static TestNorm L1 { get; } = new("L1", 1);

    public static TestNorm L2 { get; } = new("L2", 2);

    public static TestNorm LInf { get; } = new("Linf", double.PositiveInfinity);

    public static TheoryData<string> Names => new() { "L1", "L2", "Linf" };

    public static TestNorm ByName(string name) => name switch
    {
        "L1" => L1,
        "L2" => L2,
        "Linf" => LInf,
        _ => throw new ArgumentException(name, nameof(name)),
    };

    public string Name { get; }

    public double Order { get; }

    public double Combine(ReadOnlySpan<double> partNorms)
    {
        double result = 0;
        foreach (var n in partNorms)
        {
            if (double.IsPositiveInfinity(Order)) result = Math.Max(result, n);
            else if (Order == 1) result += n;
            else result += n * n;
        }

        return Order == 2 ? Math.Sqrt(result) : result;
    }

    public double Compute(ReadOnlySpan<float> values)
    {
        var d = new double[values.Length];
        for (int i = 0; i < d.Length; i++) d[i] = values[i];
        return Of(d);
    }

    /// <summary>The norm of a vector, by hand, in double.</summary>
    public double Of(IReadOnlyList<double> values)
    {
        double result = 0;
        foreach (var v in values)
        {
            if (double.IsPositiveInfinity(Order)) result = Math.Max(result, Math.Abs(v));
            else if (Order == 1) result += Math.Abs(v);
            else result += v * v;
        }

        return Order == 2 ? Math.Sqrt(result) : result;
    }
}

/// <summary>Tiny models with a byte-level tokenizer, and slow references computed the obvious way.</summary>
internal static class PruningFixtures
{
    private static readonly Lazy<HfTokenizer> LazyTokenizer = new(() => CreateTokenizer(addBos: true));
    private static readonly Lazy<HfTokenizer> LazyTokenizerWithoutBos = new(() => CreateTokenizer(addBos: false));

    /// <summary>A byte-level tokenizer without merges: BOS (id 0), EOS (id 1), then one token per byte; BOS is added.</summary>
    public static HfTokenizer Tokenizer => LazyTokenizer.Value;

    /// <summary>The same tokenizer without BOS: an empty text gives no token.</summary>
    public static HfTokenizer TokenizerWithoutBos => LazyTokenizerWithoutBos.Value;

    public static LlamaConfig Config(int layers = 3, DecoderFamily family = DecoderFamily.Llama, bool tied = false) => new()
    {
        Family = family,
        VocabSize = 258,
        HiddenSize = 16,
        IntermediateSize = 24,
        NumHiddenLayers = layers,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        HeadDim = 4,
        RmsNormEps = 1e-5,
        RopeTheta = 10000,
        TieWordEmbeddings = tied,
        AttentionBias = family == DecoderFamily.Qwen2,
    };

    /// <summary>A random float32 (or <paramref name="dtype"/>) model with the test tokenizer.</summary>
    public static TorchCausalLM Create(long seed, int layers = 3, ScalarType dtype = ScalarType.Float32, DecoderFamily family = DecoderFamily.Llama, bool tied = false) =>
        new(TinyModels.Random(Config(layers, family, tied), seed, dtype), Tokenizer);

    /// <summary>Calibration texts and, per set, perturbed twins: same length (replace), swapped, and longer/shorter (insert, delete).</summary>
    public static readonly string[] Texts =
    [
        "the cat sat on the mat",
        "a host of birds flew later",
        "we went home early",
    ];

    public static readonly string[][] TwinSets =
    [
        ["the cat sat on the hat", "a ghost of birds flew later", "we went hme early"],
        ["the cat sat in the mat", "a host of birds flew alter", "we went homes early"],
    ];

    public static IReadOnlyList<CalibrationSample> Samples => Texts.Select((t, i) => new CalibrationSample(i, t)).ToArray();

    public static IReadOnlyList<IReadOnlyList<PerturbedSample>> Twins(params int[] sets) =>
        sets.Select(s => (IReadOnlyList<PerturbedSample>)TwinSets[s].Select((t, i) => new PerturbedSample(new CalibrationSample(i, Texts[i]), t, [])).ToArray()).ToArray();

    public static ImportanceRequest Request(IPrunableModel model, params int[] sets) =>
        new(model, Samples, Twins(sets), Round: 0, Seed: 1);

    /// <summary>
    /// The reference: one full forward pass of ONE sequence with autograd, the Hugging Face loss (mean next-token
    /// cross-entropy), <c>loss.backward()</c>, and each layer's parameter gradients read from <c>.grad</c> and
    /// flattened into one vector per layer. The gradients are cleared afterwards.
    /// </summary>
    public static double[][] LayerGradients(LlamaForCausalLM model, IReadOnlyList<int> tokens)
    {
        model.zero_grad();
        double[][] result;
        using (var scope = NewDisposeScope())
        {
            var ids = tensor(tokens.Select(t => (long)t).ToArray(), [1, tokens.Count]);
            var logits = model.Logits(ids);
            var loss = nn.functional.cross_entropy(logits[0, ..^1].to_type(ScalarType.Float32), ids[0, 1..]);
            loss.backward();
            result = model.Layers.Select(layer => layer.parameters().SelectMany(p =>
            {
                using var g = p.grad ?? throw new InvalidOperationException("A layer parameter received no gradient.");
                return g.to_type(ScalarType.Float64).flatten().data<double>().ToArray();
            }).ToArray()).ToArray();
        }

        model.zero_grad();
        return result;
    }

    /// <summary>Each layer's parameters flattened into one vector per layer (float64).</summary>
    public static double[][] LayerWeights(LlamaForCausalLM model) =>
        model.Layers.Select(layer => layer.parameters().SelectMany(p =>
        {
            using var d = p.detach().to_type(ScalarType.Float64).flatten();
            return d.data<double>().ToArray();
        }).ToArray()).ToArray();

    public static double[] Subtract(double[] a, double[] b) => a.Select((v, i) => v - b[i]).ToArray();

    public static double[] Add(double[] a, double[] b) => a.Select((v, i) => v + b[i]).ToArray();

    /// <summary>All parameters (every layer and the rest) cloned, to check later that nothing changed.</summary>
    public static Dictionary<string, Tensor> Snapshot(LlamaForCausalLM model) =>
        model.NamedWeights().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    public static void ShouldEqual(this LlamaForCausalLM model, Dictionary<string, Tensor> snapshot)
    {
        var now = model.NamedWeights();
        now.Keys.Should().BeEquivalentTo(snapshot.Keys);
        foreach (var (name, p) in now)
        {
            TinyModels.Same(p.detach(), snapshot[name]).Should().BeTrue($"{name} must be unchanged");
        }
    }

    public static void ShouldHaveNoGradients(this LlamaForCausalLM model)
    {
        foreach (var (name, p) in model.named_parameters())
        {
            using var g = p.grad;
            g.Should().BeNull($"{name} must have no .grad");
        }
    }

    /// <summary>Checks |a − e| ≤ relative·|e| (+ a tiny absolute floor) element by element.</summary>
    public static void ShouldBeCloseTo(this IReadOnlyList<double> actual, IReadOnlyList<double> expected, double relative, string because = "")
    {
        actual.Should().HaveCount(expected.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            double tolerance = relative * Math.Abs(expected[i]) + 1e-12;
            actual[i].Should().BeApproximately(expected[i], tolerance, $"element {i} {because}");
        }
    }

    private static HfTokenizer CreateTokenizer(bool addBos)
    {
        var folder = Path.Combine(Path.GetTempPath(), "pip-tests-tok-" + Guid.NewGuid().ToString("N"));
        try
        {
            var bpe = new BpeTrainer(258, specialTokens: ["<s>", "</s>"]).Train([]);
            HfTokenizerWriter.WriteByteLevelBpe(folder, bpe, "<s>", "</s>", addBosToken: addBos);
            return HfTokenizer.Load(folder);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
