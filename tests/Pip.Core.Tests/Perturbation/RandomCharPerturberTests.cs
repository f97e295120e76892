namespace Pip.Tests.Perturbation;

public class RandomCharPerturberTests
{
    [Fact]
    public async Task PerturbAsync_ManySeeds_MakesConsistentPlainEdits()
    {
        IPerturber perturber = Perturbers.CreateRandomChar(new RandomCharPerturberOptions { Rate = 0.2 });

        for (int seed = 0; seed < 50; seed++)
        {
            PerturbedSample twin = await perturber.PerturbAsync(new CalibrationSample(0, Texts.Long), seed);

            EditAssertions.ShouldBeConsistent(twin);
            // 86 words × 0.2 = 17.2 → 17 edits.
            twin.Edits.Should().HaveCount(17).And.OnlyContain(e => !e.IsRealWord);
        }
    }

    [Fact]
    public async Task PerturbAsync_SameSeed_SameTwin_OtherSeed_OtherTwin()
    {
        IPerturber perturber = Perturbers.CreateRandomChar();
        var sample = new CalibrationSample(3, Texts.Long);

        PerturbedSample a = await perturber.PerturbAsync(sample, 11);
        PerturbedSample b = await perturber.PerturbAsync(sample, 11);
        PerturbedSample c = await perturber.PerturbAsync(sample, 12);

        b.Text.Should().Be(a.Text);
        b.Edits.Should().Equal(a.Edits);
        c.Text.Should().NotBe(a.Text);
    }

    [Fact]
    public async Task PerturbAsync_AllKindsAllowed_UsesEveryKind()
    {
        IPerturber perturber = Perturbers.CreateRandomChar(new RandomCharPerturberOptions { Rate = 1.0 });

        PerturbedSample twin = await perturber.PerturbAsync(new CalibrationSample(0, Texts.Long), 4);

        twin.Edits.Select(e => e.Kind).Distinct().Should().BeEquivalentTo([PerturbationKind.Swap, PerturbationKind.Replace, PerturbationKind.Insert]);
        twin.Edits.Should().OnlyContain(e => e.Before != e.After);
    }

    [Fact]
    public async Task PerturbAsync_DeleteOnly_MakesConsistentDeletions()
    {
        IPerturber perturber = Perturbers.CreateRandomChar(new RandomCharPerturberOptions { Rate = 0.3, Kinds = [PerturbationKind.Delete] });

        for (int seed = 0; seed < 20; seed++)
        {
            PerturbedSample twin = await perturber.PerturbAsync(new CalibrationSample(0, Texts.Long), seed);

            EditAssertions.ShouldBeConsistent(twin);
            twin.Edits.Should().NotBeEmpty().And.OnlyContain(e => e.Kind == PerturbationKind.Delete && e.After.Length == e.Before.Length - 1);
        }
    }

    [Fact]
    public void Name_IsRandomChar()
    {
        Perturbers.CreateRandomChar().Name.Should().Be("random-char");
    }
}
