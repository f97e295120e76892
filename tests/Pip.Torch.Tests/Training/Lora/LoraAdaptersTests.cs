using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Pruning.Width;
using Pip.Torch.Tests.Models;
using Pip.Torch.Tests.Pruning.Width;
using Pip.Torch.Training;
using Pip.Torch.Training.Lora;
using Pip.Training;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Training.Lora;

public sealed class LoraAdaptersTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pip-lora-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    private static readonly int[] Tokens = [3, 17, 42, 5, 60, 11, 8, 29, 33, 1, 50, 7];

    private static LoraOptions Options(int rank = 4, double alpha = 8, double dropout = 0) => new() { Rank = rank, Alpha = alpha, Dropout = dropout, Seed = 7 };

    /// <summary>Fills every B with random values (as after training) so that the adapters change the output.</summary>
    private static void RandomizeB(LoraAdapters adapters, long seed, double std = 0.2)
    {
        using var g = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var a in adapters.Adapters)
        {
            using var r = randn(a.B.weight.shape, dtype: ScalarType.Float32, generator: g);
            a.B.weight.copy_(r * std);
        }
    }

    private static Tensor Logits(LlamaForCausalLM model)
    {
        model.eval();
        using var noGrad = no_grad();
        using var ids = TinyModels.Ids(Tokens);
        return model.Logits(ids);
    }

    /// <summary>The largest difference relative to the largest logit (float32 rounding grows with the logits' size).</summary>
    private static double RelativeDiff(Tensor actual, Tensor expected) =>
        TinyModels.MaxAbsDiff(actual, expected) / Math.Max(1.0, expected.abs().max().item<float>());

    [Fact]
    public void Attach_DefaultTargets_AdaptsEveryProjectionWithHfNamesAndFreezesTheBase()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 2), seed: 1);
        var baseNames = model.NamedWeights().Keys.ToList();
        using var adapters = LoraAdapters.Attach(model, Options());

        adapters.Adapters.Should().HaveCount(2 * 7);
        adapters.Adapters.Select(a => a.Name).Should().Contain("model.layers.0.self_attn.q_proj").And.Contain("model.layers.1.mlp.down_proj")
            .And.NotContain(n => n.Contains("lm_head", StringComparison.Ordinal));
        var named = model.named_parameters().ToList();
        named.Where(p => !p.name.Contains(".lora_", StringComparison.Ordinal)).Select(p => p.name).Should().Equal(baseNames, "the base parameters keep their Hugging Face names");
        named.Where(p => p.parameter.requires_grad).Select(p => p.name).Should().OnlyContain(n => n.EndsWith(".lora_A.weight", StringComparison.Ordinal) || n.EndsWith(".lora_B.weight", StringComparison.Ordinal))
            .And.HaveCount(2 * 2 * 7).And.Contain("model.layers.1.mlp.down_proj.lora_B.weight");

        var q = adapters.Adapters.Single(a => a.Name == "model.layers.0.self_attn.q_proj");
        q.A.weight.shape.Should().Equal(4, 32);
        q.B.weight.shape.Should().Equal(32, 4);
        q.Scale.Should().Be(2.0);
        var k = adapters.Adapters.Single(a => a.Name == "model.layers.0.self_attn.k_proj");
        k.B.weight.shape.Should().Equal([16L, 4L], "two key/value heads of width 8");
        var bound = 1 / Math.Sqrt(32);
        q.A.weight.abs().max().item<float>().Should().BeLessThanOrEqualTo((float)bound).And.BeGreaterThan((float)(0.8 * bound), "Kaiming-uniform in ±1/√in");
        q.B.weight.count_nonzero().item<long>().Should().Be(0);
        adapters.ParameterCount.Should().Be(adapters.Adapters.Sum(a => 4 * (a.InFeatures + a.OutFeatures)));
        adapters.NamedWeights().Should().HaveCount(2 * 14);
    }

    [Fact]
    public void Attach_Initially_ForwardEqualsTheBaseModel()
    {
        using var model = TinyModels.Random(TinyModels.Config(), seed: 2);
        using var before = Logits(model);
        using var adapters = LoraAdapters.Attach(model, Options(dropout: 0.3));
        using var after = Logits(model);
        TinyModels.Same(before, after).Should().BeTrue("B is zero, so every update is exactly zero");
    }

    [Fact]
    public void Attach_RandomB_ChangesTheOutput()
    {
        using var model = TinyModels.Random(TinyModels.Config(), seed: 2);
        using var before = Logits(model);
        using var adapters = LoraAdapters.Attach(model, Options());
        RandomizeB(adapters, 3);
        using var after = Logits(model);
        TinyModels.MaxAbsDiff(before, after).Should().BeGreaterThan(1e-2, "the adapters run in the forward pass");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merge_RandomNonZeroAB_MergedForwardEqualsAdaptedForward(bool tied)
    {
        using var model = TinyModels.Random(TinyModels.Config(tied: tied, attentionBias: true, mlpBias: true), seed: 4);
        using var baseLogits = Logits(model);
        var adapters = LoraAdapters.Attach(model, Options(rank: 3, alpha: 5));
        RandomizeB(adapters, 5);
        using var adapted = Logits(model);
        adapters.Merge();

        adapters.IsAttached.Should().BeFalse();
        model.NamedWeights().Keys.Should().NotContain(k => k.Contains("lora", StringComparison.Ordinal));
        model.parameters().Should().OnlyContain(p => p.requires_grad, "requires_grad is restored");
        using var merged = Logits(model);
        RelativeDiff(merged, adapted).Should().BeLessThan(1e-5);
        TinyModels.MaxAbsDiff(merged, baseLogits).Should().BeGreaterThan(1e-2);
        var act = () => adapters.Merge();
        act.Should().Throw<InvalidOperationException>();
    }

    [Fact]
    public void Merge_Weight_IsBasePlusScaledBTimesA()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 1), seed: 4);
        using var original = model.Layers[0].Mlp.UpProj.weight.clone();
        using var adapters = LoraAdapters.Attach(model, new LoraOptions { Rank = 2, Alpha = 6, Dropout = 0, TargetModules = ["up_proj"] });
        RandomizeB(adapters, 6);
        var up = adapters.Adapters.Single();
        using var expected = original + 3.0 * up.B.weight.detach().matmul(up.A.weight.detach());
        adapters.Merge();
        TinyModels.MaxAbsDiff(model.Layers[0].Mlp.UpProj.weight, expected).Should().BeLessThan(1e-6);
    }

    [Fact]
    public void Remove_AfterChanges_LeavesTheBaseModelAsItWas()
    {
        using var model = TinyModels.Random(TinyModels.Config(), seed: 8);
        using var before = Logits(model);
        var adapters = LoraAdapters.Attach(model, Options());
        RandomizeB(adapters, 9);
        adapters.Dispose();
        adapters.IsAttached.Should().BeFalse();
        using var after = Logits(model);
        TinyModels.Same(before, after).Should().BeTrue();
        model.named_parameters().Select(p => p.name).Should().NotContain(n => n.Contains("lora", StringComparison.Ordinal));
    }

    [Fact]
    public void Attach_Dropout_ActsOnlyInTrainingMode()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 1), seed: 10);
        using var adapters = LoraAdapters.Attach(model, Options(dropout: 0.5));
        RandomizeB(adapters, 11);
        using var ids = TinyModels.Ids(Tokens);
        using var noGrad = no_grad();
        model.eval();
        using var eval1 = model.Logits(ids);
        using var eval2 = model.Logits(ids);
        model.train();
        using var train = model.Logits(ids);
        model.eval();
        TinyModels.Same(eval1, eval2).Should().BeTrue();
        TinyModels.MaxAbsDiff(eval1, train).Should().BeGreaterThan(1e-4);
    }

    [Fact]
    public void Attach_LayersAndTargets_AdaptsOnlyThose()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 3), seed: 12);
        using var adapters = LoraAdapters.Attach(model, new LoraOptions { Layers = [2, 0], TargetModules = ["v_proj", "lm_head"] });
        adapters.Adapters.Select(a => a.Name).Should().BeEquivalentTo("model.layers.0.self_attn.v_proj", "model.layers.2.self_attn.v_proj", "lm_head");
    }

    [Fact]
    public void Attach_LmHeadWithTiedEmbeddings_ThrowsAndLeavesTheModelUntouched()
    {
        using var model = TinyModels.Random(TinyModels.Config(tied: true), seed: 13);
        var act = () => LoraAdapters.Attach(model, new LoraOptions { TargetModules = ["q_proj", "lm_head"] });
        act.Should().Throw<ArgumentException>().WithMessage("*lm_head*tied*");
        model.parameters().Should().OnlyContain(p => p.requires_grad);
        model.named_parameters().Select(p => p.name).Should().NotContain(n => n.Contains("lora", StringComparison.Ordinal));
    }

    [Fact]
    public void Attach_Twice_Throws()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 1), seed: 14);
        using var adapters = LoraAdapters.Attach(model, Options());
        var act = () => LoraAdapters.Attach(model, Options());
        act.Should().Throw<InvalidOperationException>().WithMessage("*already has LoRA adapters*");
    }

    [Fact]
    public void Attach_LayerOutOfRange_Throws()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 2), seed: 14);
        var act = () => LoraAdapters.Attach(model, new LoraOptions { Layers = [1, 5] });
        act.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*5*2 layers*");
    }

    [Fact]
    public void Validate_ManyProblems_ListsThemAll()
    {
        var options = new LoraOptions
        {
            Rank = 0,
            Dropout = 1.5,
            TargetModules = ["q_proj", "attn.c_attn", "qkv"],
            Training = new TrainingOptions { MaxSteps = 10, WarmupSteps = 20 },
        };
        var act = () => options.Validate();
        var message = act.Should().Throw<ValidationException>().Which.Message;
        message.Should().Contain("Rank").And.Contain("Dropout").And.Contain("'attn.c_attn'").And.Contain("qkv")
            .And.Contain("Training: WarmupSteps (20) must be smaller than MaxSteps (10)");
        new LoraOptions().Validate();
        new LoraOptions().Scale.Should().Be(2.0);
    }

    [Fact]
    public void Train_FewSteps_OnlyAdapterParametersChange()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 2, tied: true), seed: 15);
        var baseWeights = model.NamedWeights().ToDictionary(p => p.Key, p => p.Value.clone());
        using var adapters = LoraAdapters.Attach(model, Options(dropout: 0.1));
        var trainOptions = new TrainingOptions { LearningRate = 1e-2, WarmupSteps = 1, MaxSteps = 4, BatchSize = 2, EvaluateEvery = 0, LogEvery = 0, WeightDecay = 0.1 };
        using (var trainer = new CausalLMTrainer(model, trainOptions))
        {
            trainer.TrainedParameters.Should().HaveCount(2 * 2 * 7).And.OnlyContain(p => p.Name.Contains(".lora_", StringComparison.Ordinal));
            trainer.Train(new PackedSequences(TinyModels.RandomTokens(8 * 8 + 1, 16), 8));
        }

        foreach (var (name, p) in model.NamedWeights().Where(p => !p.Key.Contains(".lora_", StringComparison.Ordinal)))
            TinyModels.Same(p, baseWeights[name]).Should().BeTrue($"{name} is frozen");
        adapters.Adapters.Should().OnlyContain(a => a.B.weight.count_nonzero().item<long>() > 0, "every B has been trained");
        foreach (var w in baseWeights.Values) w.Dispose();
    }

    [Fact]
    public void Merge_WidthPrunedHeterogeneousModel_SavedCheckpointReloadsWithIdenticalLogits()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 3, heads: 6, kvHeads: 3, headDim: 8), seed: 16);
        model.Prune(new WidthPruningPlan
        {
            KeyValueGroups = new Dictionary<int, IReadOnlyCollection<int>> { [0] = [1], [2] = [0, 2] },
            Channels = new Dictionary<int, IReadOnlyCollection<int>> { [1] = Enumerable.Range(0, 20).ToArray() },
        });
        model.Config.IsHeterogeneous.Should().BeTrue();
        var adapters = LoraAdapters.Attach(model, Options(rank: 2));
        adapters.Adapters.Single(a => a.Name == "model.layers.2.self_attn.q_proj").OutFeatures.Should().Be(16);
        adapters.Adapters.Single(a => a.Name == "model.layers.1.mlp.down_proj").InFeatures.Should().Be(28);
        RandomizeB(adapters, 17);
        using var adapted = Logits(model);
        adapters.Merge();
        using var merged = Logits(model);
        RelativeDiff(merged, adapted).Should().BeLessThan(1e-5);

        using var lm = new TorchCausalLM(WidthFixtures.Copy(model), tokenizer: null);
        lm.Save(_folder);
        using var reloaded = TorchCausalLM.Load(_folder);
        reloaded.Config.IsHeterogeneous.Should().BeTrue();
        using var reloadedLogits = Logits(reloaded.Module);
        TinyModels.Same(reloadedLogits, merged).Should().BeTrue();
    }

    [Fact]
    public void SaveAdapters_ThenLoadAdapters_RoundTripsInPeftFormat()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 2), seed: 18);
        using var adapters = LoraAdapters.Attach(model, Options());
        RandomizeB(adapters, 19);
        using var adapted = Logits(model);
        adapters.SaveAdapters(_folder, "models/tiny");

        using (var file = SafeTensorsFile.Open(Path.Combine(_folder, LoraAdapters.AdapterWeightsFile)))
        {
            file.Tensors.Select(t => t.Name).Should().HaveCount(28).And.Contain("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
                .And.Contain("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
        }
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_folder, LoraAdapters.AdapterConfigFile))))
        {
            var root = json.RootElement;
            root.GetProperty("peft_type").GetString().Should().Be("LORA");
            root.GetProperty("r").GetInt32().Should().Be(4);
            root.GetProperty("lora_alpha").GetDouble().Should().Be(8);
            root.GetProperty("task_type").GetString().Should().Be("CAUSAL_LM");
            root.GetProperty("base_model_name_or_path").GetString().Should().Be("models/tiny");
            root.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()).Should().BeEquivalentTo(LoraConstants.DefaultTargetModules);
        }
        var again = () => adapters.SaveAdapters(_folder);
        again.Should().Throw<IOException>().WithMessage("*not empty*");

        using var other = TinyModels.Random(TinyModels.Config(layers: 2), seed: 18);
        using var otherAdapters = LoraAdapters.Attach(other, Options());
        otherAdapters.LoadAdapters(_folder);
        using var loaded = Logits(other);
        TinyModels.Same(loaded, adapted).Should().BeTrue();

        using var third = TinyModels.Random(TinyModels.Config(layers: 2), seed: 18);
        using var wrongRank = LoraAdapters.Attach(third, Options(rank: 2));
        var load = () => wrongRank.LoadAdapters(_folder);
        load.Should().Throw<InvalidDataException>().WithMessage("*adapter_model.safetensors*shape mismatch*");
    }
}
