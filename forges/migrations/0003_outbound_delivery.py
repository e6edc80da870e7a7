# Status deliveries become outbound deliveries: commit statuses and plan notifications
# share one outbox (forges/outbox.py), told apart by ``kind``.

import uuid

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('builds', '0007_buildable_forge'),
        ('forges', '0002_status_delivery'),
    ]

    operations = [
        migrations.RenameModel(old_name='StatusDelivery', new_name='OutboundDelivery'),
        migrations.AlterModelOptions(
            name='outbounddelivery',
            options={'verbose_name_plural': 'outbound deliveries'},
        ),
        migrations.AddField(
            model_name='outbounddelivery',
            name='kind',
            field=models.CharField(choices=[('status', 'Status'), ('notification', 'Notification')], default='status', max_length=16),
        ),
        migrations.AddField(
            model_name='outbounddelivery',
            name='url',
            field=models.CharField(blank=True, max_length=2000),
        ),
        migrations.AddField(
            model_name='outbounddelivery',
            name='event',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name='outbounddelivery',
            name='secret',
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name='outbounddelivery',
            name='uuid',
            field=models.UUIDField(default=uuid.uuid4, editable=False),
        ),
        migrations.AlterField(
            model_name='outbounddelivery',
            name='build',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='outbound_deliveries', to='builds.build'),
        ),
        migrations.AlterField(
            model_name='outbounddelivery',
            name='forge',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name='outbounddelivery',
            name='repository',
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AlterField(
            model_name='outbounddelivery',
            name='commit',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name='outbounddelivery',
            name='state',
            field=models.CharField(blank=True, max_length=16),
        ),
    ]
