using System.ComponentModel.DataAnnotations;
using Pip.Training;

namespace Pip.Core.Tests.Training;

public sealed class TrainingOptionsTests
{
    [Fact]
    public void Validate_Defaults_Pass()
    {
        var act = () => new TrainingOptions().Validate();
        act.Should().NotThrow();
    }

    [Fact]
    public void Validate_SeveralProblems_OneExceptionListsAll()
    {
        var options = new TrainingOptions
        {
            LearningRate = -1,
            BatchSize = 0,
            WarmupSteps = 500,
            MaxSteps = 100,
            CheckpointEvery = 10,
        };
        var act = () => options.Validate();
        var error = act.Should().Throw<ValidationException>().Which;
        error.Message.Should().Contain(nameof(TrainingOptions.LearningRate))
            .And.Contain(nameof(TrainingOptions.BatchSize))
            .And.Contain("WarmupSteps (500) must be smaller than MaxSteps (100)")
            .And.Contain(nameof(TrainingOptions.CheckpointFolder))
            .And.Contain("4 problem(s)");
    }

    [Fact]
    public void Validate_EarlyStoppingWithoutEvaluation_Fails()
    {
        var options = new TrainingOptions { EarlyStoppingPatience = 3, EvaluateEvery = 0 };
        var act = () => options.Validate();
        act.Should().Throw<ValidationException>().WithMessage("*EarlyStoppingPatience needs EvaluateEvery*");
    }

    [Fact]
    public void CreateSchedule_UsesOptions()
    {
        var schedule = new TrainingOptions { LearningRate = 3e-4, WarmupSteps = 5, MaxSteps = 50, MinLearningRateRatio = 0.2 }.CreateSchedule();
        schedule.At(4).Should().BeApproximately(3e-4, 1e-15);
        schedule.At(49).Should().BeApproximately(6e-5, 1e-15);
    }
}
