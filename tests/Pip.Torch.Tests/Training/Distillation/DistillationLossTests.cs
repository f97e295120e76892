using System.ComponentModel.DataAnnotations;
using Pip.Checkpoints;
using Pip.Torch.Models;
using Pip.Torch.Training;
using Pip.Torch.Training.Distillation;
using Pip.Training;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Training.Distillation;

public sealed class DistillationLossTests
{
    internal static LlamaConfig Config(int intermediate = 32) => new()
    {
        Family = DecoderFamily.Llama,
        VocabSize = 24,
        HiddenSize = 16,
        IntermediateSize = intermediate,
        NumHiddenLayers = 2,
        NumAttentionHeads = 2,
        NumKeyValueHeads = 1,
        HeadDim = 8,
        RmsNormEps = 1e-5,
        TieWordEmbeddings = true,
    };

    private static TrainingBatch Batch(int seed)
    {
        var random = new Random(seed);
        var tokens = Enumerable.Range(0, 3 * 10 + 1).Select(_ => random.Next(24)).ToArray();
        return new PackedSequences(tokens, 10).CreateBatch([0, 1, 2], CPU);
    }

    [Fact]
    public void Compute_StudentEqualsTeacherAlphaZero_IsZero()
    {
        using var student = LlamaForCausalLM.CreateRandom(Config(), seed: 1, std: 0.5);
        using var teacher = LlamaForCausalLM.CreateRandom(Config(), seed: 1, std: 0.5);
        using var batch = Batch(3);
        student.train();
        using var loss = DistillationLoss.Compute(student, teacher, batch, new DistillationOptions { Alpha = 0, Temperature = 2 });
        loss.item<float>().Should().BeApproximately(0f, 1e-6f);

        // A different teacher gives a clearly positive KL.
        using var other = LlamaForCausalLM.CreateRandom(Config(), seed: 2, std: 0.5);
        using var apart = DistillationLoss.Compute(student, other, batch, new DistillationOptions { Alpha = 0, Temperature = 2 });
        apart.item<float>().Should().BeGreaterThan(1e-3f);
    }

    [Fact]
    public void Compute_AlphaOne_EqualsLanguageModelLoss()
    {
        using var student = LlamaForCausalLM.CreateRandom(Config(), seed: 1, std: 0.5);
        using var teacher = LlamaForCausalLM.CreateRandom(Config(), seed: 5, std: 0.5);
        using var batch = Batch(4);
        student.train();
        using var loss = DistillationLoss.Compute(student, teacher, batch, new DistillationOptions { Alpha = 1, Temperature = 3 });
        using var ce = CausalLMTrainer.CrossEntropyLoss(student, batch);
        loss.item<float>().Should().BeApproximately(ce.item<float>(), 1e-5f);
    }

    [Fact]
    public void Combine_HandComputedCase_MatchesFormulaAndSkipsPadding()
    {
        // Two positions over a vocabulary of 3; the second is padding and must not count.
        float[] s = [1f, 0f, -1f, 5f, 5f, -5f];
        float[] t = [0f, 2f, 0f, -3f, 0f, 3f];
        using var student = tensor(s, [1, 2, 3]);
        using var teacher = tensor(t, [1, 2, 3]);
        using var targets = tensor(new long[] { 1, DistillationConstants.IgnoreIndex }, [1, 2]);
        const double alpha = 0.3, temperature = 2.0;

        static double[] LogSoftmax(double[] z) { var m = z.Max(); var lse = m + Math.Log(z.Sum(v => Math.Exp(v - m))); return z.Select(v => v - lse).ToArray(); }
        var ls = LogSoftmax([1 / temperature, 0, -1 / temperature]);
        var lt = LogSoftmax([0, 2 / temperature, 0]);
        double kl = Enumerable.Range(0, 3).Sum(v => Math.Exp(lt[v]) * (lt[v] - ls[v]));
        double ce = -LogSoftmax([1, 0, -1])[1];
        double expected = alpha * ce + (1 - alpha) * temperature * temperature * kl;

        using var loss = DistillationLoss.Combine(student, teacher, targets, alpha, temperature);
        loss.item<float>().Should().BeApproximately((float)expected, 1e-5f);
    }

    [Fact]
    public void Compute_EvaluationMode_ReturnsLanguageModelLossUnlessDisabled()
    {
        using var student = LlamaForCausalLM.CreateRandom(Config(), seed: 1, std: 0.5);
        using var teacher = LlamaForCausalLM.CreateRandom(Config(), seed: 5, std: 0.5);
        using var batch = Batch(4);
        student.eval();
        using var ce = CausalLMTrainer.CrossEntropyLoss(student, batch);
        using var evaluated = DistillationLoss.Compute(student, teacher, batch, new DistillationOptions { Alpha = 0 });
        evaluated.item<float>().Should().BeApproximately(ce.item<float>(), 1e-5f);
        using var kd = DistillationLoss.Compute(student, teacher, batch, new DistillationOptions { Alpha = 0, LanguageModelLossWhenEvaluating = false });
        kd.item<float>().Should().NotBeApproximately(ce.item<float>(), 1e-2f);
    }

    [Fact]
    public void Create_InTrainer_TrainsStudentTowardsTeacherAndLeavesTeacherUnchanged()
    {
        using var student = LlamaForCausalLM.CreateRandom(Config(intermediate: 16), seed: 1);
        using var teacher = LlamaForCausalLM.CreateRandom(Config(), seed: 7, std: 0.3);
        DistillationLoss.Freeze(teacher);
        var before = teacher.NamedWeights().ToDictionary(p => p.Key, p => p.Value.clone());
        var random = new Random(9);
        var data = new PackedSequences(Enumerable.Range(0, 8 * 12 + 1).Select(_ => random.Next(24)).ToArray(), 12);
        var options = new DistillationOptions { Alpha = 0, Temperature = 1 };
        var loss = DistillationLoss.Create(teacher, options);
        using var trainer = new CausalLMTrainer(student, new TrainingOptions { LearningRate = 1e-2, WarmupSteps = 0, MaxSteps = 30, BatchSize = 4, EvaluateEvery = 0, LogEvery = 0 }, loss: loss);
        var result = trainer.Train(data);

        result.History.TakeLast(3).Average(h => h.TrainLoss).Should().BeLessThan(0.75 * result.History.Take(3).Average(h => h.TrainLoss), "the KL to the teacher falls");
        foreach (var (name, p) in teacher.NamedWeights())
            (p - before[name]).abs().max().item<float>().Should().Be(0f, name);
    }

    [Fact]
    public void Compute_OtherVocabulary_Throws()
    {
        using var student = LlamaForCausalLM.CreateRandom(Config(), seed: 1);
        using var teacher = LlamaForCausalLM.CreateRandom(Config() with { VocabSize = 30 }, seed: 1);
        using var batch = Batch(1);
        var act = () => DistillationLoss.Compute(student, teacher, batch, new DistillationOptions());
        act.Should().Throw<ArgumentException>().WithMessage("*vocabulary (30 tokens)*student's (24)*");
    }

    [Fact]
    public void Validate_OutOfRange_ListsEveryProblem()
    {
        var act = () => new DistillationOptions { Alpha = 1.5, Temperature = 0 }.Validate();
        act.Should().Throw<ValidationException>().WithMessage("*2 problem(s)*Alpha*Temperature*");
        using var teacher = new LlamaForCausalLM(Config());
        FluentActions.Invoking(() => DistillationLoss.Create(teacher, new DistillationOptions { Alpha = -0.1 }))
            .Should().Throw<ValidationException>();
    }
}
